//! Every WGSL file under `shaders/`, embedded at build time. Each entry validates on its own (naga in
//! the tests, the browser's compiler in the browser tests); kernels specialise them with `override`
//! constants. WGSL has no include, so the files that need erf (gelu, the packed matvec, the matmuls) get
//! `shaders/erf.wgsl` put in front of them here, the matmul kernels `shaders/matmul_common.wgsl`
//! (their overrides and the use of their uniform parameters), the two vec4 ones
//! `shaders/matmul_vec4_io.wgsl` (their bindings and epilogue), and the kernels with dropout
//! (dropout, layernorm, softmax) `shaders/rng.wgsl` (its hash). No file declares its uniform
//! struct: [`source`] puts in front of each the WGSL text of the struct its kernel module declares
//! in [`params`] with [`uniform::uniform`], so Rust and WGSL share one layout.

pub(crate) mod params;
pub(crate) mod uniform;

use params::{adamw, cross_entropy, dropout, elementwise, embedding, gelu, glu, layernorm, matmul, matvec, rmsnorm, rotary, sample, softmax};

/// Each shader's files, without their uniform structs (see [`source`]).
pub const SHADERS: &[(&str, &str)] = &[
    ("matmul", concat!(include_str!("../../shaders/erf.wgsl"), include_str!("../../shaders/matmul_common.wgsl"), include_str!("../../shaders/matmul.wgsl"))),
    ("matmul_vec4", concat!(include_str!("../../shaders/erf.wgsl"), include_str!("../../shaders/matmul_common.wgsl"), include_str!("../../shaders/matmul_vec4_io.wgsl"), include_str!("../../shaders/matmul_vec4.wgsl"))),
    // + matmul_subgroup_entry(), see source()
    ("matmul_subgroup", concat!(include_str!("../../shaders/erf.wgsl"), include_str!("../../shaders/matmul_common.wgsl"), include_str!("../../shaders/matmul_vec4_io.wgsl"), include_str!("../../shaders/matmul_subgroup.wgsl"))),
    // the same kernel reading A and B from the textures they were copied into; + its operands'
    // loads and matmul_subgroup_entry(), see source()
    ("matmul_subgroup_tex", concat!(include_str!("../../shaders/erf.wgsl"), include_str!("../../shaders/matmul_common.wgsl"), include_str!("../../shaders/matmul_vec4_io.wgsl"), include_str!("../../shaders/matmul_subgroup.wgsl"))),
    ("softmax", concat!(include_str!("../../shaders/rng.wgsl"), include_str!("../../shaders/softmax.wgsl"))),
    ("layernorm", concat!(include_str!("../../shaders/rng.wgsl"), include_str!("../../shaders/layernorm.wgsl"))),
    ("gelu", concat!(include_str!("../../shaders/erf.wgsl"), include_str!("../../shaders/gelu.wgsl"))),
    ("elementwise", include_str!("../../shaders/elementwise.wgsl")),
    ("glu", concat!(include_str!("../../shaders/erf.wgsl"), include_str!("../../shaders/glu.wgsl"))),
    ("rotary", include_str!("../../shaders/rotary.wgsl")),
    ("rmsnorm", include_str!("../../shaders/rmsnorm.wgsl")),
    ("embedding", include_str!("../../shaders/embedding.wgsl")),
    ("dropout", concat!(include_str!("../../shaders/rng.wgsl"), include_str!("../../shaders/dropout.wgsl"))),
    ("cross_entropy", include_str!("../../shaders/cross_entropy.wgsl")),
    ("adamw", include_str!("../../shaders/adamw.wgsl")),
    ("matvec", include_str!("../../shaders/matvec.wgsl")),
    ("matvec_packed", concat!(include_str!("../../shaders/erf.wgsl"), include_str!("../../shaders/matvec_packed.wgsl"))),
    ("attention_cached", include_str!("../../shaders/attention_cached.wgsl")),
    ("sample", include_str!("../../shaders/sample.wgsl")),
];

/// The uniform structs shader `name` reads, as WGSL.
fn uniforms(name: &str) -> &'static str {
    match name {
        "matmul" | "matmul_vec4" | "matmul_subgroup" | "matmul_subgroup_tex" => matmul::Params::WGSL,
        "softmax" => softmax::Params::WGSL,
        "layernorm" => layernorm::Params::WGSL,
        "gelu" => gelu::Params::WGSL,
        "elementwise" => elementwise::Params::WGSL,
        "glu" => glu::Params::WGSL,
        "rotary" => rotary::Params::WGSL,
        "rmsnorm" => rmsnorm::Params::WGSL,
        "embedding" => embedding::Params::WGSL,
        "dropout" => dropout::Params::WGSL,
        "cross_entropy" => cross_entropy::Params::WGSL,
        "adamw" => adamw::Params::WGSL,
        "matvec" => matvec::MatvecParams::WGSL,
        "matvec_packed" => matvec::PackedParams::WGSL,
        "attention_cached" => matvec::AttnParams::WGSL,
        "sample" => sample::Params::WGSL,
        _ => "",
    }
}

/// The whole source of shader `name`: its uniform struct, its files, and for the two subgroup
/// matmuls their operands' loads and the entry point written out by [`matmul_subgroup_entry`]. Built once, on first use.
pub fn source(name: &str) -> Option<&'static str> {
    static FULL: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();
    let all = FULL.get_or_init(|| {
        SHADERS
            .iter()
            .map(|&(n, file)| {
                let entry = match n {
                    "matmul_subgroup" => format!("{BUFFER_OPERANDS}{}", matmul_subgroup_entry(n, SUBGROUP_TILE, SUBGROUP_TILE)),
                    "matmul_subgroup_tex" => format!("{}{}", texture_operands(), matmul_subgroup_entry(n, SUBGROUP_TEX_TILES.0, SUBGROUP_TEX_TILES.1)),
                    _ => String::new(),
                };
                (n, format!("{}\n{file}\n{entry}", uniforms(n)))
            })
            .collect()
    });
    all.iter().find(|(n, _)| *n == name).map(|(_, s)| s.as_str())
}

/// A workgroup's tile in shaders/matmul_subgroup.wgsl: `rows` rows of C (a multiple of 8), and
/// `groups` groups of 4 columns per lane (a lane owns columns c0 + 32g .. c0 + 32g + 3), so
/// 32 `groups` columns a workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub rows: usize,
    pub groups: usize,
}

impl Tile {
    /// (rows, columns) of C a workgroup computes.
    pub fn shape(self) -> (usize, usize) {
        (self.rows, 32 * self.groups)
    }
}

/// `matmul_subgroup`'s tile. On lavapipe, alternating runs: a SmolLM2-135M-shaped LoRA step (B 8 x
/// T 128) 11.6-13.8 s with 24 rows against 13.9-18.7 s with 16; BERT mini's full step (B 16 x
/// T 128) 1.18-1.24 s against 1.37-1.52 s. With every row's values loaded before the multiply-adds,
/// 16 had beaten 32 (fewer values held at once); with each row's multiply-adds right after its
/// values, 24 reuses each load of B over more rows without holding more.
pub const SUBGROUP_TILE: Tile = Tile { rows: 24, groups: 1 };

/// `matmul_subgroup_tex`'s tiles: where B is stored (N, K), and otherwise. Its loads are cheap
/// enough that larger tiles pay. On lavapipe, SmolLM2-135M's products in one quiet period: the
/// forward's 1024 x 576 -> 3072 (B stored (N, K)) 81-83 GFLOP/s with 32 rows x 1 group against
/// 71-76 with 24 x 1 and 66-69 with 16 x 2; the backward's 1024 x 3072 -> 576 (B stored (K, N))
/// 63-67 with 16 x 2 against 55-56 with 32 x 1 (40 and 48 rows: no better within the noise).
pub const SUBGROUP_TEX_TILES: (Tile, Tile) = (Tile { rows: 32, groups: 1 }, Tile { rows: 16, groups: 2 });

/// How shaders/matmul_subgroup.wgsl reads its operands' vec4s in `matmul_subgroup`: from the
/// storage buffers.
const BUFFER_OPERANDS: &str = "fn av(i: u32) -> vec4<f32> { return a[i]; }\nfn bv(i: u32) -> vec4<f32> { return b[i]; }\n";

/// Texels a row of the textures that `matmul_subgroup_tex` reads: vec4 i of an operand (from the
/// first element its product reads) is texel (i % TEX_WIDTH, i / TEX_WIDTH)
/// (kernels::matmul, `Kernel::SubgroupTex`).
pub const TEX_WIDTH: usize = 4096;

/// How `matmul_subgroup_tex` reads its operands' vec4s: from the textures they were copied into.
fn texture_operands() -> String {
    format!(
        "@group(0) @binding(5) var ta: texture_storage_2d<rgba32float, read>;
@group(0) @binding(6) var tb: texture_storage_2d<rgba32float, read>;
fn av(i: u32) -> vec4<f32> {{ return textureLoad(ta, vec2<u32>(i % {TEX_WIDTH}u, i / {TEX_WIDTH}u)); }}
fn bv(i: u32) -> vec4<f32> {{ return textureLoad(tb, vec2<u32>(i % {TEX_WIDTH}u, i / {TEX_WIDTH}u)); }}
"
    )
}

/// The entry point `name` of shaders/matmul_subgroup.wgsl: the tile `bt` where B is stored (N, K)
/// (TRANS_B), `plain` otherwise, each a function with its rows written out ([`matmul_subgroup_tile`]).
fn matmul_subgroup_entry(name: &str, bt: Tile, plain: Tile) -> String {
    // one tile for both layouts is written once
    let (tiles, body) = if bt == plain {
        (matmul_subgroup_tile(&format!("{name}_tile"), bt), format!("{name}_tile(wg, lid3.x);"))
    } else {
        let tiles = matmul_subgroup_tile(&format!("{name}_bt"), bt) + &matmul_subgroup_tile(&format!("{name}_plain"), plain);
        (tiles, format!("if (TRANS_B) {{ {name}_bt(wg, lid3.x); }} else {{ {name}_plain(wg, lid3.x); }}"))
    };
    format!(
        "{tiles}@compute @workgroup_size(8, 1, 1)
fn {name}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {{
    {body}
}}
"
    )
}

/// One tile of shaders/matmul_subgroup.wgsl as function `fname`, its rows written out: one thread
/// of the subgroup of 8 keeps `acc{i}_{g}` (row r0+i, its 4 columns of group g) for each row in
/// registers, and per 4 steps of k gets row i's 4 values of A from the lane that loaded them.
fn matmul_subgroup_tile(fname: &str, tile: Tile) -> String {
    const LANES: usize = 8;
    let Tile { rows, groups } = tile;
    let mut w = String::new();
    let mut line = |l: String| {
        w.push_str(&l);
        w.push('\n');
    };
    line(format!("fn {fname}(wg: vec3<u32>, lid: u32) {{"));
    line(format!("    let s0 = setup(wg, lid, {rows}u, {groups}u);"));
    for g in 1..groups {
        line(format!("    var s{g} = s0;"));
        line(format!("    s{g}.c0 = s0.c0 + {}u;", 32 * g));
    }
    // row i's multiply-adds, written right after its values x{i} (row r0+i of op(A) at
    // k = 4q..4q+3): x{i} dies there, so the registers hold the accumulators and one row's values,
    // not every row's (with 16 rows: products 1.25x faster on lavapipe than all the rows' values first)
    let fmas = |line: &mut dyn FnMut(String), i: usize| {
        for g in 0..groups {
            for (kk, comp) in ["x", "y", "z", "w"].iter().enumerate() {
                line(format!("            acc{i}_{g} = fma(vec4<f32>(x{i}.{comp}), y{g}[{kk}], acc{i}_{g});"));
            }
        }
    };
    for i in 0..rows {
        for g in 0..groups {
            line(format!("    var acc{i}_{g} = vec4<f32>(0.0);"));
        }
    }
    line("    for (var q = 0u; q < p.k / 4u; q++) {".into());
    for g in 0..groups {
        line(format!("        let y{g} = load_b(s{g}, q);"));
    }
    line("        if (TRANS_A) {".into());
    // lane g < rows / 4 holds rows 4g..4g+3 at k = 4q..4q+3, one slot per k
    for h in 0..4 {
        line(format!("            let a{h} = load_a(s0, q, lid, {h}u);"));
    }
    // lane l's slot h holds rows 4l..4l+3 at k = 4q+h
    for l in 0..rows / 4 {
        for h in 0..4 {
            line(format!("            let t{h}_{l} = subgroupShuffle(a{h}, {l}u);"));
        }
        for (j, comp) in ["x", "y", "z", "w"].iter().enumerate() {
            let i = 4 * l + j;
            line(format!("            let x{i} = vec4<f32>(t0_{l}.{comp}, t1_{l}.{comp}, t2_{l}.{comp}, t3_{l}.{comp});"));
            fmas(&mut line, i);
        }
    }
    line("        } else {".into());
    for h in 0..rows / LANES {
        line(format!("            let a{h} = load_a(s0, q, lid, {h}u);"));
    }
    // lane l's slot h holds row l + 8h
    for i in 0..rows {
        line(format!("            let x{i} = subgroupShuffle(a{}, {}u);", i / LANES, i % LANES));
        fmas(&mut line, i);
    }
    line("        }".into());
    line("    }".into());
    for i in 0..rows {
        for g in 0..groups {
            line(format!("    store4(s0.base_c, s0.r0 + {i}u, s{g}.c0, acc{i}_{g});"));
        }
    }
    line("}".into());
    w
}

/// Parses and validates one shader with naga, as wgpu would before building a pipeline (natively:
/// in the browser, Chrome's compiler validates every pipeline it builds).
#[cfg(not(target_arch = "wasm32"))]
pub fn validate(name: &str) -> Result<naga::valid::ModuleInfo, String> {
    let src = source(name).ok_or_else(|| format!("no shader named {name}"))?;
    let module = naga::front::wgsl::parse_str(src).map_err(|e| format!("{name}.wgsl: {}", e.emit_to_string(src)))?;
    // only matmul_subgroup uses subgroups (a device that offers them, src/gpu/device.rs)
    let caps = if name.starts_with("matmul_subgroup") { naga::valid::Capabilities::SUBGROUP } else { naga::valid::Capabilities::empty() };
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::SHUFFLE)
        .validate(&module)
        .map_err(|e| format!("{name}.wgsl: {}", e.emit_to_string(src)))
}
