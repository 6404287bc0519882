//! Every WGSL file under `shaders/`, embedded at build time. Each entry validates on its own (naga in
//! the tests, the browser's compiler in the browser tests); kernels specialise them with `override`
//! constants. WGSL has no include, so the files that need erf (gelu, matmul, matmul_vec4) get
//! `shaders/erf.wgsl` put in front of them here, both matmul kernels `shaders/matmul_common.wgsl`
//! (their overrides and uniform parameters), and the kernels with dropout (dropout, layernorm,
//! softmax) `shaders/rng.wgsl` (its hash).

pub const SHADERS: &[(&str, &str)] = &[
    ("matmul", concat!(include_str!("../shaders/erf.wgsl"), include_str!("../shaders/matmul_common.wgsl"), include_str!("../shaders/matmul.wgsl"))),
    ("matmul_vec4", concat!(include_str!("../shaders/erf.wgsl"), include_str!("../shaders/matmul_common.wgsl"), include_str!("../shaders/matmul_vec4.wgsl"))),
    ("softmax", concat!(include_str!("../shaders/rng.wgsl"), include_str!("../shaders/softmax.wgsl"))),
    ("layernorm", concat!(include_str!("../shaders/rng.wgsl"), include_str!("../shaders/layernorm.wgsl"))),
    ("gelu", concat!(include_str!("../shaders/erf.wgsl"), include_str!("../shaders/gelu.wgsl"))),
    ("elementwise", include_str!("../shaders/elementwise.wgsl")),
    ("embedding", include_str!("../shaders/embedding.wgsl")),
    ("dropout", concat!(include_str!("../shaders/rng.wgsl"), include_str!("../shaders/dropout.wgsl"))),
    ("cross_entropy", include_str!("../shaders/cross_entropy.wgsl")),
    ("adamw", include_str!("../shaders/adamw.wgsl")),
];

pub fn source(name: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Parses and validates one shader with naga, as wgpu would before building a pipeline.
pub fn validate(name: &str) -> Result<naga::valid::ModuleInfo, String> {
    let src = source(name).ok_or_else(|| format!("no shader named {name}"))?;
    let module = naga::front::wgsl::parse_str(src).map_err(|e| format!("{name}.wgsl: {}", e.emit_to_string(src)))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .map_err(|e| format!("{name}.wgsl: {}", e.emit_to_string(src)))
}
