//! Every kernel check of `bertlab::kernels::checks`, natively on wgpu (lavapipe on a machine without a
//! GPU). A missing adapter fails every test with instructions; nothing is skipped.


use crate::common::gpu;

macro_rules! native_tests {
    ($($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let g = gpu();
                match pollster::block_on(bertlab::kernels::checks::$name(g)) {
                    Ok(summary) => println!("{} on {}: {summary}", stringify!($name), g.info.name),
                    Err(e) => panic!("{} on {}: {e}", stringify!($name), g.info.summary()),
                }
            }
        )*
    };
}

bertlab::for_each_kernel_check!(native_tests);

/// Every shader source parses and validates with naga, as wgpu would before building a pipeline
/// (natively only: in the browser, pipelines_build_in_error_scope has Chrome's compiler build every
/// pipeline).
#[test]
fn shaders_validate_with_naga() {
    for (name, _) in bertlab::shaders::SHADERS {
        if let Err(e) = bertlab::shaders::validate(name) {
            panic!("{e}");
        }
    }
    println!("{} shader files parsed and validated by naga", bertlab::shaders::SHADERS.len());
}

#[test]
fn adapter_is_named_and_not_gl() {
    let g = gpu();
    assert!(!g.info.name.is_empty());
    assert_ne!(g.info.backend, "Gl", "fell back to GL: {}", g.info.summary());
    println!("adapter: {}", g.info.summary());
}

/// Profiling mode replays a step one command at a time and times each dispatch: the results are
/// bit-identical to the normal single submission, and every kernel of the step has a time.
#[test]
fn profiling_times_each_kernel_and_changes_nothing() {
    use bertlab::kernels::{matmul::Matmul, softmax};
    let g = bertlab::gpu::Gpu::new_blocking().unwrap();
    let mut rng = bertlab::rng::Rng::new(3);
    let (m, n, k) = (64, 96, 80);
    let a = g.upload_f32("a", &rng.normals(m * k, 1.0)).unwrap();
    let b = g.upload_f32("b", &rng.normals(k * n, 1.0)).unwrap();
    let run = |profile: bool| -> Vec<f32> {
        g.set_profiling(profile);
        let c = g.zeros("c", m * n, bertlab::gpu::DType::F32).unwrap();
        let p = g.zeros("p", m * n, bertlab::gpu::DType::F32).unwrap();
        let mut step = g.begin_step("profiled");
        step.clear(&c);
        Matmul::new(m, n, k).record(&mut step, c.at([m, n]), a.at([m, k]), b.at([k, n]), None).unwrap();
        softmax::Softmax::new(0.5).forward(&mut step, p.at([m, n]), c.at([m, n]), None).unwrap();
        let rb = step.read_back(&p, 0, m * n).unwrap();
        pollster::block_on(step.submit()).unwrap();
        g.set_profiling(false);
        pollster::block_on(rb.f32(&g)).unwrap()
    };
    let plain = run(false);
    assert!(g.take_kernel_times().is_empty(), "no times outside profiling mode");
    let profiled = run(true);
    assert_eq!(plain, profiled, "a profiled step computed something else");
    let times = g.take_kernel_times();
    println!("kernel times: {times:?}");
    // the two kernels, and on a CPU adapter with subgroups the matmul's copies of A and B into
    // its textures, timed as one entry
    let (copies, kernels): (Vec<_>, Vec<_>) = times.iter().partition(|(k, _, _)| k == "copy_to_texture");
    assert_eq!(kernels.len(), 2, "{times:?}");
    assert!(kernels.iter().all(|(_, ms, n)| *ms > 0.0 && *n == 1), "{times:?}");
    let textured = kernels.iter().any(|(k, _, _)| k == "matmul_subgroup_tex");
    assert!(if textured { copies.len() == 1 && copies[0].2 == 2 } else { copies.is_empty() }, "{times:?}");
    assert!(times.iter().any(|(k, _, _)| k.starts_with("matmul")) && times.iter().any(|(k, _, _)| k.starts_with("softmax")), "{times:?}");
}
