#!/usr/bin/env python3
"""Writes BERT Lab's sample data (committed in www/samples/, used by the tests and the app's
"try a sample" buttons). Deterministic: rerunning gives the same files.

  sentiment.tsv  label<TAB>text, positive/negative reviews. The same adjectives appear in both classes
                 (negation, "at first ... but ..." contrasts), so no single word decides the label.
  topics.tsv     label<TAB>text, sports/cooking/technology/travel; topic words are many and shared
                 filler is common, so no one keyword decides either.
  corpus.txt     unlabeled paragraphs of several sentences, one per line, for pretraining (MLM + SOP).
"""
import os, random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "www", "samples")
os.makedirs(OUT, exist_ok=True)
rng = random.Random(20261128)

things = ["the movie", "the pizza", "this phone", "the hotel", "the concert", "the book", "the new laptop", "the coffee",
          "the service", "the trip", "the game", "the soup", "the headphones", "the museum", "the train ride", "the sofa",
          "the app", "the show", "the bakery", "the bike"]
good = ["great", "wonderful", "excellent", "delightful", "lovely", "fantastic", "charming", "superb", "pleasant", "brilliant"]
bad = ["awful", "terrible", "boring", "dreadful", "disappointing", "poor", "bland", "annoying", "clumsy", "mediocre"]
good_verbs = ["I loved it", "I would recommend it", "I will come back", "it made my day", "it was worth every penny"]
bad_verbs = ["I regret it", "I would not recommend it", "I will not come back", "it ruined my evening", "it was a waste of money"]
openers = ["Honestly,", "To be fair,", "In the end,", "Overall,", "Frankly,", ""]

def sentiment_line(label):
    pos = label == "positive"
    t = rng.choice(things)
    kind = rng.randrange(5)
    op = rng.choice(openers)
    if kind == 0:
        text = f"{op} {t} was {rng.choice(good if pos else bad)} and {rng.choice(good_verbs if pos else bad_verbs)}."
    elif kind == 1:  # negated adjective of the other polarity
        text = f"{op} {t} was not {rng.choice(bad if pos else good)} at all, {rng.choice(good_verbs if pos else bad_verbs)}."
    elif kind == 2:  # contrast: the second half decides
        first = rng.choice(bad if pos else good)
        second = rng.choice(good if pos else bad)
        text = f"At first I thought {t} was {first}, but it turned out to be {second}."
    elif kind == 3:
        text = f"I expected {t} to be {rng.choice(good if not pos else bad)}, yet it was {rng.choice(good if pos else bad)}."
    else:
        text = f"Nobody could call {t} {rng.choice(bad if pos else good)}; {rng.choice(good_verbs if pos else bad_verbs)}."
    return " ".join(text.split()).replace(" ,", ",")

topics = {
    "sports": (["the striker", "the coach", "our team", "the goalkeeper", "the runner", "the referee", "the captain", "the fans"],
               ["scored in the final minute", "trained hard before the match", "won the championship", "missed a penalty",
                "broke the record on the track", "celebrated the victory", "lost the away game", "passed the ball wide"]),
    "cooking": (["the chef", "my grandmother", "the recipe", "the baker", "our cook", "the sauce", "the oven", "the dough"],
                ["simmered the tomatoes slowly", "needs more garlic and salt", "baked fresh bread this morning",
                 "chopped the onions finely", "roasted the vegetables", "whisked the eggs with sugar", "burned the pan",
                 "seasoned the soup with pepper"]),
    "technology": (["the developer", "the new chip", "the server", "the software update", "the robot", "the network",
                    "the database", "the startup"],
                   ["crashed after the upgrade", "runs the code twice as fast", "encrypted the user data",
                    "released an open source library", "needs more memory", "fixed a security bug",
                    "trained a neural network", "compiled the program overnight"]),
    "travel": (["the tourists", "our flight", "the guide", "the hostel", "the passport office", "the ferry",
                "my backpack", "the airline"],
               ["was delayed at the airport", "booked a room near the beach", "crossed the border at dawn",
                "visited the old castle", "lost the luggage", "hiked to the mountain village", "missed the connection",
                "explored the harbour market"]),
}
fillers = ["Yesterday", "Last week", "As usual", "Surprisingly", "This time", "Once again", "Apparently", "Of course"]

def topic_line(label):
    subj, preds = topics[label]
    s = f"{rng.choice(fillers)} {rng.choice(subj)} {rng.choice(preds)}"
    if rng.random() < 0.5:
        other = rng.choice(subj)
        s += f", and {other} {rng.choice(preds)}"
    return s + "."

def write_labeled(name, labels, make, n):
    seen, rows = set(), []
    while len(rows) < n:
        label = labels[len(rows) % len(labels)]
        text = make(label)
        if text in seen:
            continue
        seen.add(text)
        rows.append((label, text))
    rng.shuffle(rows)
    with open(os.path.join(OUT, name), "w") as f:
        f.write("label\ttext\n")
        for label, text in rows:
            f.write(f"{label}\t{text}\n")

write_labeled("sentiment.tsv", ["positive", "negative"], sentiment_line, 400)
write_labeled("topics.tsv", list(topics), topic_line, 400)

# corpus: paragraphs whose sentences follow in a natural order (so sentence order is learnable)
stories = [
    ["The curious kitten woke up early.", "It stretched on the warm windowsill.", "Then the curious kitten deftly climbed the bookshelf.", "From the top it watched the birds outside."],
    ["Toast is a simple yet delicious food.", "It's often served with butter, jam, or honey.", "Many people eat it for breakfast."],
    ["The baker lit the oven before dawn.", "She kneaded the dough on the wooden table.", "By seven the bread was golden and warm.", "Customers lined up outside the shop."],
    ["Our team arrived at the stadium early.", "The coach explained the plan for the match.", "The striker scored in the final minute.", "The fans sang all the way home."],
    ["The developer found a bug in the server.", "She wrote a test that failed.", "Then she fixed the code and the test passed.", "The update was released the next day."],
    ["We packed our bags the night before.", "Our flight left the city at noon.", "In the evening we walked along the harbour.", "The next morning we visited the old castle."],
    ["The old man planted tomatoes in spring.", "He watered them every evening.", "By summer the plants were tall and green.", "In autumn he made a rich tomato sauce."],
    ["The river rose after three days of rain.", "Farmers moved their animals to higher ground.", "When the water fell, the fields were covered in mud."],
]
subjects = ["the kitten", "the dog", "the teacher", "the student", "the farmer", "the pilot", "the writer", "the child", "the doctor", "the painter"]
verbs = ["opened the door", "read a long letter", "walked to the market", "cooked a small dinner", "fixed the old clock",
         "painted the fence", "wrote a short story", "fed the birds", "cleaned the kitchen", "watched the sunset"]
thens = ["Then", "After that", "Later", "Finally"]
lines = []
for _ in range(12):
    for s in stories:
        lines.append(" ".join(s))
while len(lines) < 600:
    subj = rng.choice(subjects)
    k = rng.randrange(2, 5)
    vs = rng.sample(verbs, k)
    sent = [f"{subj.capitalize()} {vs[0]}."] + [f"{thens[min(i, 3)]} {subj} {v}." for i, v in enumerate(vs[1:])]
    lines.append(" ".join(sent))
rng.shuffle(lines)
with open(os.path.join(OUT, "corpus.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("wrote", OUT)
