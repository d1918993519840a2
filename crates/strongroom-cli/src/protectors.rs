//! Key protectors built from arguments: the one a store is unsealed with,
//! the one `init` creates, the one `rotate-root` moves to; and the files
//! holding PINs and shares they read.

use std::path::{Path, PathBuf};

use strongroom::SecretString;
use strongroom::protector::{KeyProtector, SoftwareProtector};
use strongroom::shamir::{ShamirProtector, Share};
use strongroom_pkcs11::{Pkcs11Config, Pkcs11Protector};
use zeroize::Zeroizing;

use crate::args::{
    ENV_KEY_FILE, ENV_PKCS11_MODULE, ENV_SHAMIR_SHARES_FILE, InitArgs, NewProtectorArgs, StoreArgs,
};
use crate::exit::{CliResult, Failure};

/// A new protector, and its shares with the number needed (`K`) if it is
/// a Shamir protector (they exist only here and must be shown once).
pub(crate) type NewProtector = (Box<dyn KeyProtector>, Option<(u8, Vec<Share>)>);

/// The protector a store was unsealed with.
pub(crate) enum Unsealer {
    Other(Box<dyn KeyProtector>),
    Pkcs11(Pkcs11Protector),
}

impl Unsealer {
    pub(crate) fn as_dyn(&self) -> &dyn KeyProtector {
        match self {
            Self::Other(p) => p.as_ref(),
            Self::Pkcs11(p) => p,
        }
    }
}

/// The protector named by a store command's arguments (exactly one).
/// `stdin_free`: whether the PIN may be read from stdin.
/// Options on the command line win over the environment as a whole: the
/// variables are read only when no protector option is given.
pub(crate) async fn store_protector(a: &StoreArgs, stdin_free: bool) -> CliResult<Unsealer> {
    let [key_file, pkcs11_module, shamir_shares_file] =
        if a.key_file.is_some() || a.pkcs11_module.is_some() || a.shamir_shares_file.is_some() {
            [
                a.key_file.clone(),
                a.pkcs11_module.clone(),
                a.shamir_shares_file.clone(),
            ]
        } else {
            [
                env_path(ENV_KEY_FILE),
                env_path(ENV_PKCS11_MODULE),
                env_path(ENV_SHAMIR_SHARES_FILE),
            ]
        };
    let chosen = [
        key_file.is_some(),
        pkcs11_module.is_some(),
        shamir_shares_file.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        return Err(Failure::Usage(format!(
            "give exactly one of --key-file, --pkcs11-module (with --token and --key-label) or --shamir-shares-file \
             (or, with none of them, set exactly one of {ENV_KEY_FILE}, {ENV_PKCS11_MODULE} or {ENV_SHAMIR_SHARES_FILE})"
        )));
    }
    if let Some(f) = &key_file {
        return Ok(Unsealer::Other(Box::new(SoftwareProtector::from_key_file(
            f,
        )?)));
    }
    if let Some(module) = &pkcs11_module {
        let config = pkcs11_config(
            module,
            a.token.as_deref(),
            a.key_label.as_deref(),
            a.pin_file.as_deref(),
            stdin_free,
        )?;
        return Ok(Unsealer::Pkcs11(Pkcs11Protector::open(config).await?));
    }
    if let Some(f) = &shamir_shares_file {
        let text = read_private_file(f, "shares file")?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let shares = Share::parse_all(&lines)?;
        return Ok(Unsealer::Other(Box::new(ShamirProtector::from_shares(
            &shares,
        )?)));
    }
    Err(Failure::Usage("no protector given".into()))
}

/// A protector chosen and checked, not yet created where creating it is an
/// effect outside this process (a key generated on a PKCS#11 token): the
/// caller audits its intent first, then calls [`Pending::create`].
pub(crate) enum Pending {
    /// Nothing left to do: a key file read, or a Shamir key split (its
    /// shares exist only here).
    Ready(NewProtector),
    /// A new key to generate on this token.
    Pkcs11(Pkcs11Config),
}

impl Pending {
    /// The protector, generating the token key if there is one to make.
    pub(crate) async fn create(self) -> strongroom::Result<NewProtector> {
        match self {
            Self::Ready(p) => Ok(p),
            Self::Pkcs11(config) => Ok((Box::new(Pkcs11Protector::init_key(config).await?), None)),
        }
    }
}

/// The protector `init` wraps the new root key with (exactly one).
/// As for [`store_protector`], the environment is read only when no
/// protector option is given.
pub(crate) fn init_protector(args: &InitArgs) -> CliResult<Pending> {
    let [key_file, pkcs11_module] =
        if args.key_file.is_some() || args.pkcs11_module.is_some() || args.shamir.is_some() {
            [args.key_file.clone(), args.pkcs11_module.clone()]
        } else {
            [env_path(ENV_KEY_FILE), env_path(ENV_PKCS11_MODULE)]
        };
    let chosen = [
        key_file.is_some(),
        pkcs11_module.is_some(),
        args.shamir.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        return Err(Failure::Usage(format!(
            "give exactly one of --key-file, --pkcs11-module (with --token and --key-label) or --shamir K/N \
             (or, with none of them, set exactly one of {ENV_KEY_FILE} or {ENV_PKCS11_MODULE})"
        )));
    }
    if let Some(f) = &key_file {
        return Ok(Pending::Ready((
            Box::new(SoftwareProtector::from_key_file(f)?),
            None,
        )));
    }
    if let Some(module) = &pkcs11_module {
        let config = pkcs11_config(
            module,
            args.token.as_deref(),
            args.key_label.as_deref(),
            args.pin_file.as_deref(),
            true,
        )?;
        return Ok(Pending::Pkcs11(config));
    }
    if let Some((k, n)) = args.shamir {
        let (p, s) = ShamirProtector::generate(k, n)?;
        return Ok(Pending::Ready((Box::new(p), Some((k, s)))));
    }
    Err(Failure::Usage("no protector given".into()))
}

/// The protector `rotate-root` moves the store to (exactly one).
pub(crate) fn new_protector(a: &NewProtectorArgs) -> CliResult<Pending> {
    let chosen = [
        a.new_key_file.is_some(),
        a.new_pkcs11_module.is_some(),
        a.new_shamir.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        return Err(Failure::Usage(
            "give exactly one new protector: --new-key-file, --new-pkcs11-module (with --new-token, --new-key-label, --new-pin-file) or --new-shamir K/N".into(),
        ));
    }
    if let Some(f) = &a.new_key_file {
        return Ok(Pending::Ready((
            Box::new(SoftwareProtector::from_key_file(f)?),
            None,
        )));
    }
    if let Some(module) = &a.new_pkcs11_module {
        let config = pkcs11_config(
            module,
            a.new_token.as_deref(),
            a.new_key_label.as_deref(),
            a.new_pin_file.as_deref(),
            false,
        )?;
        return Ok(Pending::Pkcs11(config));
    }
    if let Some((k, n)) = a.new_shamir {
        let (p, s) = ShamirProtector::generate(k, n)?;
        return Ok(Pending::Ready((Box::new(p), Some((k, s)))));
    }
    Err(Failure::Usage("no new protector given".into()))
}

fn pkcs11_config(
    module: &Path,
    token: Option<&str>,
    key_label: Option<&str>,
    pin_file: Option<&Path>,
    stdin_free: bool,
) -> CliResult<Pkcs11Config> {
    let (Some(token), Some(key_label)) = (token, key_label) else {
        return Err(Failure::Usage(
            "a PKCS#11 protector needs the token label and the key label".into(),
        ));
    };
    let pin = match pin_file {
        Some(f) => {
            let text = read_private_file(f, "PIN file")?;
            SecretString::new(first_line(&text))
        }
        None if stdin_free => {
            use std::io::IsTerminal as _;
            if std::io::stdin().is_terminal() {
                return Err(Failure::Usage(
                    "stdin is a terminal and the PIN would be echoed: give --pin-file or pipe the PIN in".into(),
                ));
            }
            use std::io::{BufRead as _, Read as _};
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .take(MAX_SECRET_FILE_LEN)
                .read_line(&mut line)
                .map_err(|e| Failure::Io(format!("cannot read the PIN from stdin: {e}")))?;
            SecretString::new(first_line(&line))
        }
        None => {
            return Err(Failure::Usage(
                "this command reads stdin for something else: give the PIN with --pin-file".into(),
            ));
        }
    };
    if pin.expose_secret().is_empty() {
        return Err(Failure::Usage("the PIN is empty".into()));
    }
    Ok(Pkcs11Config::new(module, token, pin, key_label))
}

/// A path from the environment variable `var`; unset or empty is none.
fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_owned()
}

/// Reads a file holding secret material, refusing one that others can read.
fn read_private_file(path: &Path, what: &str) -> CliResult<Zeroizing<String>> {
    use std::os::unix::fs::PermissionsExt as _;
    let io = |e: std::io::Error| Failure::Io(format!("{what} {}: {e}", path.display()));
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::Io(format!(
            "{what} {}: mode {mode:04o} lets other users read it; run chmod 600 on it",
            path.display()
        )));
    }
    use std::io::Read as _;
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_SECRET_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_SECRET_FILE_LEN {
        return Err(Failure::Io(format!(
            "{what} {}: longer than {MAX_SECRET_FILE_LEN} bytes",
            path.display()
        )));
    }
    Ok(text)
}

/// The most bytes read from a PIN or shares file (or a PIN on stdin).
pub(crate) const MAX_SECRET_FILE_LEN: u64 = 64 * 1024;
