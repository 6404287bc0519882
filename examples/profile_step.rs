use bertlab::gpu::Gpu;
use bertlab::model::{Bert, BertConfig, Heads};
use bertlab::text::tokenizer::BertTokenizer;
use bertlab::train::trainer::{self, PretrainConfig};
use bertlab::train::masking::non_special_ids;
use bertlab::kernels::adamw::AdamW;
fn main() {
    let g = Gpu::new_blocking().unwrap();
    let lines: Vec<String> = bertlab::train::checks::CORPUS.lines().map(str::to_string).collect();
    let tok = BertTokenizer::train_wordpiece(&lines, 800).unwrap();
    let cfg = BertConfig::small(tok.vocab_size, 64, 2, 4);
    let (mut m, _) = Bert::new(&g, cfg, Heads { mlm: true, sop: true, num_labels: 0 }, None, 2).unwrap();
    m.params.set_trainable(&g, |_| true).unwrap();
    let pc = PretrainConfig::default();
    let cands = non_special_ids(tok.vocab_size, &tok.special_ids());
    let mut rng = bertlab::rng::Rng::new(1);
    let hb = trainer::pretrain_batch(&tok, &lines, &pc, true, &cands, &mut rng).unwrap();
    let opt = AdamW::default();
    for k in 0..6 {
        g.reset_counters();
        let t0 = std::time::Instant::now();
        let batch = hb.to_gpu(&g, &m.cfg).unwrap();
        let t1 = t0.elapsed();
        let mut step = g.begin_step("train");
        m.zero_grads(&mut step);
        m.forward(&g, &mut step, &batch, 0).unwrap();
        let t2 = t0.elapsed();
        if k % 2 == 0 {
        m.backward(&mut step, &batch, 0).unwrap();
        m.optimizer_step(&g, &mut step, &opt, 1e-3, 0.01).unwrap();
        }
        let t3 = t0.elapsed();
        pollster::block_on(step.submit()).unwrap();
        let t4 = t0.elapsed();
        g.wait_idle();
        let t5 = t0.elapsed();
        let c = g.counters();
        println!("k={k} batch {:?} record-fwd {:?} record-bwd {:?} submit {:?} gpu {:?} dispatches {} B={} T={}", t1, t2-t1, t3-t2, t4-t3, t5-t4, c.total_dispatches(), hb.b, hb.t);
    }
    let mut v: Vec<_> = g.counters().dispatches.into_iter().collect(); v.sort_by_key(|x| std::cmp::Reverse(x.1)); println!("{:?}", &v[..8.min(v.len())]);
}
