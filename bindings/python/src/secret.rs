//! `Secret`: a secret handed to Python, and the conversions of secret input
//! and output.

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use strongroom::SecretBytes;
use zeroize::{Zeroize as _, Zeroizing};

/// Copies bytes-like input (`bytes`, `bytearray`, `memoryview`, or a
/// [`Secret`]) into a buffer that is wiped on drop.
pub(crate) fn secret_input(obj: &Bound<'_, PyAny>) -> PyResult<SecretBytes> {
    if let Ok(s) = obj.cast::<Secret>() {
        return s.get().to_secret(obj.py());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(SecretBytes::copy_from(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(SecretBytes::new(b.to_vec()));
    }
    let b = PyBytes::new(obj.py(), &[]).get_type().call1((obj,))?;
    let b = b.cast::<PyBytes>()?;
    Ok(SecretBytes::copy_from(b.as_bytes()))
}

/// Copies bytes-like input into a buffer laid out for sealing in place
/// (header room, then the plaintext); wiped on drop.
pub(crate) fn seal_input(obj: &Bound<'_, PyAny>) -> PyResult<Zeroizing<Vec<u8>>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let b = b.as_bytes();
        let mut buf = Zeroizing::new(strongroom::seal::seal_buffer(b.len()));
        buf.extend_from_slice(b);
        return Ok(buf);
    }
    let s = secret_input(obj)?;
    let mut buf = Zeroizing::new(strongroom::seal::seal_buffer(s.len()));
    buf.extend_from_slice(s.expose_secret());
    Ok(buf)
}

// ---------------------------------------------------------------------------
// Secret

/// A secret returned by Strongroom.
///
/// Its value lives in a `bytearray` owned by this object; `repr()` and
/// `str()` never show it. `wipe()` overwrites it with zeros (also done when
/// the object is garbage-collected). `reveal()` returns an immutable `bytes`
/// copy that Python cannot wipe; `as_bytearray()` gives the backing buffer
/// itself, which `wipe()` zeroes.
#[pyclass(module = "strongroom", frozen)]
pub struct Secret {
    pub(crate) buf: Py<PyByteArray>,
}

impl Secret {
    pub(crate) fn new(py: Python<'_>, value: SecretBytes) -> Self {
        // `value` is wiped when it drops at the end of this function.
        Self::from_slice(py, value.expose_secret())
    }

    pub(crate) fn from_slice(py: Python<'_>, value: &[u8]) -> Self {
        Self {
            buf: PyByteArray::new(py, value).unbind(),
        }
    }

    pub(crate) fn to_secret(&self, py: Python<'_>) -> PyResult<SecretBytes> {
        Ok(SecretBytes::new(self.buf.bind(py).to_vec()))
    }

    pub(crate) fn zero(&self, py: Python<'_>) {
        let buf = self.buf.bind(py);
        // SAFETY: we hold the GIL (`py`) and run no Python code while the
        // slice lives, so nothing can resize or free the bytearray under it;
        // the slice is dropped before this function returns.
        #[allow(unsafe_code)]
        let bytes = unsafe { buf.as_bytes_mut() };
        bytes.zeroize();
    }
}

/// Converts a core secret into a [`Secret`] when handed to Python.
pub(crate) struct SecretOut(pub(crate) SecretBytes);

impl<'py> IntoPyObject<'py> for SecretOut {
    type Target = Secret;
    type Output = Bound<'py, Secret>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, Secret::new(py, self.0))
    }
}

#[pymethods]
impl Secret {
    /// A new secret holding a copy of `value`.
    #[new]
    fn py_new(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self::new(value.py(), secret_input(value)?))
    }

    /// An immutable copy of the value. Python cannot wipe `bytes`: prefer
    /// `as_bytearray()` or use the copy briefly.
    fn reveal<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = PyBytes::new(py, &[])
            .get_type()
            .call1((self.buf.bind(py),))?;
        Ok(b.cast_into::<PyBytes>()?)
    }

    /// The backing `bytearray` itself (not a copy); `wipe()` zeroes it.
    fn as_bytearray<'py>(&self, py: Python<'py>) -> Bound<'py, PyByteArray> {
        self.buf.bind(py).clone()
    }

    /// Overwrites the value with zeros.
    fn wipe(&self, py: Python<'_>) {
        self.zero(py);
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.buf.bind(py).len()
    }

    pub(crate) fn __repr__(&self, py: Python<'_>) -> String {
        format!("Secret([REDACTED; {} bytes])", self.buf.bind(py).len())
    }

    fn __str__(&self, py: Python<'_>) -> String {
        self.__repr__(py)
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "a Secret cannot be pickled",
        ))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        Python::attach(|py| self.zero(py));
    }
}

pub(crate) struct SecretOptOut(pub(crate) Option<SecretBytes>);

impl<'py> IntoPyObject<'py> for SecretOptOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        match self.0 {
            Some(s) => Ok(SecretOut(s).into_pyobject(py)?.into_any()),
            None => Ok(py.None().into_bound(py)),
        }
    }
}

pub(crate) struct BytesOut(pub(crate) Vec<u8>);

impl<'py> IntoPyObject<'py> for BytesOut {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Ok(bytes_out(py, self.0))
    }
}

pub(crate) fn bytes_out(py: Python<'_>, v: Vec<u8>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, &v)
}
