//! The exception hierarchy, made from the core's error table
//! (`strongroom::ERROR_CODES`), and the one function mapping core errors
//! onto it.
//!
//! Nothing here names an error variant: at module init every distinct
//! `class` of the table becomes a Python exception class deriving from its
//! `parent` (family classes such as `SecretError` derive from
//! `StrongroomError`), and [`to_py`] raises the class `Error::details()`
//! names with `code` and every field as attributes. `docs/ERRORS.md` lists
//! the table; `tests/test_errors.py` checks the module against it.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use pyo3::{PyErr, create_exception};
use strongroom::{ERROR_CODES, Error, ErrorDetails, FieldValue, ROOT_CLASS};

create_exception!(
    strongroom,
    StrongroomError,
    PyException,
    "Base class of every error Strongroom raises. `code` is the error's stable code (docs/ERRORS.md)."
);
create_exception!(
    strongroom,
    Closed,
    StrongroomError,
    "The store was closed (close(), or leaving its with / async with block), or the Python interpreter is exiting. Raised by the binding itself; code \"closed\"."
);
/// Old class names kept as aliases of the table's classes.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("SecretStoreError", "SecretError"),
    ("CasConflict", "SecretCasMismatch"),
    ("NotFound", "SecretNotFound"),
    ("VersionDeleted", "SecretVersionDeleted"),
    ("VersionDestroyed", "SecretVersionDestroyed"),
];

/// The classes made from the table, by name.
static CLASSES: OnceLock<HashMap<&'static str, Py<PyType>>> = OnceLock::new();

fn family_doc(name: &str) -> String {
    match name {
        "SecretError" => "A versioned-secrets operation failed.".to_owned(),
        "PolicyError" => {
            "A policy could not be loaded or evaluated, or denied an operation.".to_owned()
        }
        "AuditError" => "The audit trail could not be written or failed verification.".to_owned(),
        "LeaseError" => "A lease operation failed.".to_owned(),
        "RotationError" => "A credential rotation failed.".to_owned(),
        "ShamirError" => "Shamir split or combine failed.".to_owned(),
        "SigningError" => "A signing-key operation failed.".to_owned(),
        "PkiError" => "The internal certificate authority refused or failed (its own `pki.*` codes; its policy, storage and lease errors raise the core's classes).".to_owned(),
        _ => format!("Errors of the {name} family."),
    }
}

/// The doc string of a table class: the meaning of its one code, or the
/// list of its codes.
fn class_doc(name: &str) -> String {
    let rows: Vec<_> = ERROR_CODES.iter().filter(|r| r.class == name).collect();
    match rows.as_slice() {
        [] => family_doc(name),
        [one] => format!("{} (code {:?}).", upper_first(one.meaning), one.code),
        many => {
            let mut s = String::from("One class for several codes; `code` tells them apart:");
            for r in many {
                s.push_str(&format!("\n  {}: {}", r.code, r.meaning));
            }
            s
        }
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The table's class names, parents before children.
fn class_order() -> Vec<&'static str> {
    let mut order: Vec<&'static str> = Vec::new();
    // Family classes (parents that are not the root) first.
    for row in ERROR_CODES {
        if row.parent != ROOT_CLASS && !order.contains(&row.parent) {
            order.push(row.parent);
        }
    }
    for row in ERROR_CODES {
        if !order.contains(&row.class) {
            order.push(row.class);
        }
    }
    order
}

fn parent_of(name: &str) -> &'static str {
    ERROR_CODES
        .iter()
        .find(|r| r.class == name)
        .map_or(ROOT_CLASS, |r| r.parent)
}

/// Makes the exception classes from the table and adds them, the aliases,
/// `ERROR_CODES` and `ERROR_CLASSES` to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let root = py.get_type::<StrongroomError>();
    m.add("StrongroomError", &root)?;
    let closed = py.get_type::<Closed>();
    closed.setattr("code", "closed")?;
    m.add("Closed", &closed)?;

    let order = class_order();
    let mut classes: HashMap<&'static str, Py<PyType>> = HashMap::new();
    if let Some(existing) = CLASSES.get() {
        // A second module init (subinterpreters are not supported; this
        // only re-adds the classes made the first time).
        classes = existing
            .iter()
            .map(|(k, v)| (*k, v.clone_ref(py)))
            .collect();
    } else {
        for name in &order {
            let parent_name = parent_of(name);
            let base = if parent_name == ROOT_CLASS {
                root.clone()
            } else {
                classes
                    .get(parent_name)
                    .expect("parents are made first")
                    .bind(py)
                    .clone()
            };
            let qual = CString::new(format!("strongroom.{name}")).expect("no NUL in class names");
            let doc = CString::new(class_doc(name)).expect("no NUL in docs");
            let ty = PyErr::new_type(py, &qual, Some(&doc), Some(&base), None)?;
            let codes: Vec<_> = ERROR_CODES.iter().filter(|r| r.class == *name).collect();
            if let [one] = codes.as_slice() {
                // The code of a class with one code, also on the class.
                ty.bind(py).setattr("code", one.code)?;
            }
            classes.insert(name, ty);
        }
        let _ = CLASSES.set(classes.iter().map(|(k, v)| (*k, v.clone_ref(py))).collect());
    }
    for name in &order {
        m.add(*name, classes[name].bind(py))?;
    }
    for (old, new) in ALIASES {
        m.add(*old, classes[new].bind(py))?;
    }

    let rows = PyList::empty(py);
    for row in ERROR_CODES {
        let d = PyDict::new(py);
        d.set_item("code", row.code)?;
        d.set_item("class", row.class)?;
        d.set_item("parent", row.parent)?;
        d.set_item("kind", row.kind)?;
        let fields: Vec<(&str, &str)> = row.fields.iter().map(|f| (f.name, f.ty.name())).collect();
        d.set_item("fields", PyTuple::new(py, fields)?)?;
        d.set_item("meaning", row.meaning)?;
        rows.append(d)?;
    }
    m.add("ERROR_CODES", rows.to_tuple())?;
    let mut names = vec![ROOT_CLASS, "Closed"];
    names.extend(order);
    names.extend(ALIASES.iter().map(|(old, _)| *old));
    m.add("ERROR_CLASSES", PyTuple::new(py, names)?)?;
    Ok(())
}

/// Maps a core error onto the class `details()` names (see
/// [`details_to_py`]).
pub(crate) fn to_py(e: Error) -> PyErr {
    details_to_py(e.details())
}

/// Maps an error of the internal CA exactly like a core error, through its
/// details: core errors keep the core's classes, the CA's own raise their
/// `pki.*` classes (all deriving from `PkiError`).
pub(crate) fn pki_to_py(e: strongroom_pki::PkiError) -> PyErr {
    details_to_py(e.details())
}

/// Raises the class `d` names, with `code`, every field of the table as an
/// attribute (timestamps as integer milliseconds since the epoch, absent
/// values as `None`, lists as lists) and the error's message as text.
fn details_to_py(d: ErrorDetails) -> PyErr {
    Python::attach(|py| {
        let class = CLASSES.get().and_then(|c| c.get(d.class));
        let err = match class {
            Some(ty) => PyErr::from_type(ty.bind(py).clone(), (d.message,)),
            None => StrongroomError::new_err(d.message),
        };
        let value = err.value(py);
        // Setting an attribute on a fresh exception instance cannot fail in
        // practice; if it did, the exception is still raised.
        let _ = value.setattr("code", d.code);
        for (name, field) in d.fields {
            let _ = match field {
                FieldValue::Str(s) => value.setattr(name, s),
                FieldValue::U64(n) => value.setattr(name, n),
                FieldValue::Time(t) => value.setattr(name, t.as_millis()),
                FieldValue::StrList(l) => value.setattr(name, l),
                FieldValue::BoolList(l) => value.setattr(name, l),
                _ => value.setattr(name, py.None()),
            };
        }
        err
    })
}
