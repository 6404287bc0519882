// Embedding lookup and its backward.
//   forward:  out[t, :] = table[ids[t], :]            (ACCUMULATE: +=, to sum word + position + type)
//   backward: dtable[v, :] += sum_{t : ids[t] = v} dout[t, :]
// The backward is a deterministic scatter-add without atomics: the host (which owns the ids) groups
// positions by id into CSR form, `uniq` (U distinct ids), `starts` (U + 1), `pos` (T positions), and
// one workgroup per distinct id sums its rows in a fixed order.
// An id outside [0, vocab) gives a zero row (the host validates ids before they get here).
// A table too large for one storage binding is bound in shards of rows: `id_base` is the shard's
// first row, so the shard serves ids in [id_base, id_base + vocab) and gives zero rows (forward)
// or skips (backward) every other id.

override ACCUMULATE: bool = false;
const WG: u32 = 32u;

// Params (tokens, dim, vocab, n_uniq, off_table, id_base) is declared in src/shaders/params.rs (`params::embedding`), whose WGSL text src/shaders/mod.rs puts in front of this file.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// embedding_backward
@group(0) @binding(4) var<storage, read> uniq: array<u32>;
@group(0) @binding(5) var<storage, read> starts: array<u32>;
@group(0) @binding(6) var<storage, read> pos: array<u32>;
@group(0) @binding(7) var<storage, read> dout: array<f32>;
@group(0) @binding(8) var<storage, read_write> dtable: array<f32>;

@compute @workgroup_size(WG)
fn embedding_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = wg.x + wg.y * nwg.x;
    if (t >= p.tokens) { return; }
    // wraps past vocab for ids below the shard
    let id = ids[t] - p.id_base;
    for (var c = lid.x; c < p.dim; c += WG) {
        var v = 0.0;
        if (id < p.vocab) { v = table[p.off_table + id * p.dim + c]; }
        if (ACCUMULATE) { v += out[t * p.dim + c]; }
        out[t * p.dim + c] = v;
    }
}

@compute @workgroup_size(WG)
fn embedding_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_id) lid: vec3<u32>) {
    let u = wg.x + wg.y * nwg.x;
    if (u >= p.n_uniq) { return; }
    let id = uniq[u] - p.id_base;
    if (id >= p.vocab) { return; }
    for (var c = lid.x; c < p.dim; c += WG) {
        var s = 0.0;
        for (var k = starts[u]; k < starts[u + 1u]; k++) { s += dout[pos[k] * p.dim + c]; }
        dtable[p.off_table + id * p.dim + c] += s;
    }
}
