//! A tensor's place and shape on the GPU: what the kernels take (as candle's and ratchet's tensors
//! carry their layout), so that each can check its operands against each other instead of trusting
//! a run of sizes passed beside them.

use std::fmt;

use super::buffer::GpuBuf;
use super::error::GpuError;

/// Up to four dimensions, row-major.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    dims: [usize; 4],
    rank: usize,
}

impl Shape {
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }
    /// The last dimension (1 for a scalar).
    pub fn cols(&self) -> usize {
        self.dims().last().copied().unwrap_or(1)
    }
    /// The product of every dimension but the last: the rows of a row-wise kernel.
    pub fn rows(&self) -> usize {
        self.dims()[..self.rank.saturating_sub(1)].iter().product()
    }
}

macro_rules! shape_from_array {
    ($($n:literal),*) => {$(
        impl From<[usize; $n]> for Shape {
            fn from(d: [usize; $n]) -> Shape {
                let mut dims = [1; 4];
                dims[..$n].copy_from_slice(&d);
                Shape { dims, rank: $n }
            }
        }
    )*};
}
shape_from_array!(1, 2, 3, 4);

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}

/// `shape` (row-major) of `buf`'s elements from element `off` on. Made by [`GpuBuf::at`] and
/// [`GpuBuf::at_off`]; nothing is checked until a kernel takes it, which returns
/// [`GpuError::Shape`] naming itself and the operands when they do not fit.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub buf: &'a GpuBuf,
    pub off: usize,
    pub shape: Shape,
}

impl GpuBuf {
    /// This buffer from its element 0, as `shape`.
    pub fn at(&self, shape: impl Into<Shape>) -> View<'_> {
        View { buf: self, off: 0, shape: shape.into() }
    }
    /// This buffer from element `off`, as `shape`.
    pub fn at_off(&self, off: usize, shape: impl Into<Shape>) -> View<'_> {
        View { buf: self, off, shape: shape.into() }
    }
}

impl<'a> View<'a> {
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    pub fn rows(&self) -> usize {
        self.shape.rows()
    }
    pub fn cols(&self) -> usize {
        self.shape.cols()
    }

    /// The view, or an error unless its elements lie inside its buffer.
    pub(crate) fn check(self, kernel: &str, what: &str) -> Result<View<'a>, GpuError> {
        need(kernel, what, self.buf, self.off, self.numel())?;
        Ok(self)
    }

    /// The buffer of a view that starts at element 0, for a kernel that indexes its bindings from
    /// there (no offset in its parameters): an error if it starts elsewhere or does not fit.
    pub(crate) fn whole(self, kernel: &str, what: &str) -> Result<&'a GpuBuf, GpuError> {
        if self.off != 0 {
            return Err(GpuError::Shape(format!(
                "{kernel}: {what} starts at element {}; this kernel reads its operands from element 0 (bind a view of the buffer, GpuBuf::view)",
                self.off
            )));
        }
        Ok(self.check(kernel, what)?.buf)
    }
}

/// An error unless `want` is `what`'s shape.
pub(crate) fn expect_shape(kernel: &str, what: &str, v: &View, want: impl Into<Shape>) -> Result<(), GpuError> {
    let want = want.into();
    if v.shape != want {
        return Err(GpuError::Shape(format!("{kernel}: {what} is {} but should be {want}", v.shape)));
    }
    Ok(())
}

/// An error unless every view has the first's shape, naming the first that differs and the first.
fn same_shapes(kernel: &str, views: &[(&str, &View)]) -> Result<(), GpuError> {
    let Some((first, v0)) = views.first() else { return Ok(()) };
    for (what, v) in &views[1..] {
        if v.shape != v0.shape {
            return Err(GpuError::Shape(format!("{kernel}: {what} is {} but {first} is {}", v.shape, v0.shape)));
        }
    }
    Ok(())
}

/// The buffers of `views`, in order, when they all have one shape and start at element 0 (see
/// [`View::whole`]); otherwise the error, naming `kernel` and the operands.
pub(crate) fn same_whole<'a, const N: usize>(kernel: &str, views: [(&str, View<'a>); N]) -> Result<[&'a GpuBuf; N], GpuError> {
    let refs: Vec<(&str, &View)> = views.iter().map(|(what, v)| (*what, v)).collect();
    same_shapes(kernel, &refs)?;
    let mut bufs = views.map(|(_, v)| v.buf);
    for (b, (what, v)) in bufs.iter_mut().zip(views) {
        *b = v.whole(kernel, what)?;
    }
    Ok(bufs)
}

/// Checks that `buf` holds at least `off + len` elements.
pub(crate) fn need(kernel: &str, what: &str, buf: &GpuBuf, off: usize, len: usize) -> Result<(), GpuError> {
    if off + len > buf.len {
        return Err(GpuError::Shape(format!(
            "{kernel}: {what} needs {len} elements from offset {off}, but its buffer holds {}",
            buf.len
        )));
    }
    Ok(())
}
