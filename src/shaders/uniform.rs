//! Uniform parameter structs declared once for both sides: [`uniform!`] writes the `#[repr(C)]`
//! Rust struct a kernel fills and the WGSL `struct` its shader reads ([`super::source`] puts that
//! text in front of the shader's file, which declares none).

/// The WGSL scalar types a uniform field may have: 4 bytes each, so a struct of them has no padding
/// on either side, and WGSL's uniform layout rules and `#[repr(C)]` place every field alike.
pub trait WgslScalar: bytemuck::Pod {}
impl WgslScalar for u32 {}
impl WgslScalar for i32 {}
impl WgslScalar for f32 {}

/// ```text
/// uniform! {
///     /// What shaders/x.wgsl reads.
///     pub(crate) struct Params { rows: u32, scale: f32 }
/// }
/// ```
/// declares the Rust struct (`Pod`, for `bytemuck::bytes_of`) and `Params::WGSL`, the same struct
/// as WGSL text, field for field. Only `u32`, `i32` and `f32` fields are taken (see
/// [`WgslScalar`]); no padding is written, since a dispatch rounds its uniform binding up to 16
/// bytes itself.
macro_rules! uniform {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident: $ty:ident),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $(pub(crate) $field: $ty,)*
        }

        impl $name {
            /// This struct as the shader declares it.
            pub(crate) const WGSL: &'static str =
                concat!("struct ", stringify!($name), " {\n", $("    ", stringify!($field), ": ", stringify!($ty), ",\n",)* "}\n");
        }

        const _: fn() = || {
            fn scalar<T: $crate::shaders::uniform::WgslScalar>() {}
            $(scalar::<$ty>();)*
        };
    };
}
pub(crate) use uniform;
