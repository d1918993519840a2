//! TLS for test clusters: a throwaway CA and server certificate, and the
//! files and `pg_hba.conf` lines that make a cluster accept TLS only.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use strongroom::SecretString;

use crate::tools::{io, random_password, run};
use crate::{Result, TestPgError};

/// A throwaway certificate authority and a server certificate it issued,
/// for TLS test clusters (ECDSA P-256 keys, made with rcgen on ring).
pub struct TestCertificates {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: SecretString,
}

impl fmt::Debug for TestCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCertificates")
            .field("server_key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl TestCertificates {
    /// A new CA and a server certificate for `server_names` (DNS names or IP
    /// addresses) issued by it.
    ///
    /// # Errors
    ///
    /// [`TestPgError::Certificate`] if a key or certificate cannot be made.
    pub fn generate(server_names: &[&str]) -> Result<Self> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let cert_err = |e: rcgen::Error| TestPgError::Certificate(e.to_string());
        let ca_key = KeyPair::generate().map_err(cert_err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        // A name of its own, so another test CA is an unknown issuer.
        let tag = random_password()?;
        let tag = tag.expose_secret().get(..12).unwrap_or_default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("strongroom-testpg CA {tag}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(cert_err)?;
        let names: Vec<String> = server_names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(cert_err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "strongroom-testpg server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params.signed_by(&server_key, &issuer).map_err(cert_err)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: SecretString::new(server_key.serialize_pem()),
        })
    }

    /// The CA certificate (PEM): what clients put in `sslrootcert`.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server certificate (PEM).
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert_pem
    }

    /// The server's private key (PEM, PKCS#8).
    pub fn server_key_pem(&self) -> &SecretString {
        &self.server_key_pem
    }

    /// Writes the CA certificate to `path`.
    ///
    /// # Errors
    ///
    /// [`TestPgError::Io`] if the file cannot be written.
    pub fn write_ca(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, &self.ca_pem)
            .map_err(|e| io(&format!("cannot write {}", path.display()), e))
    }
}

/// The CA certificate, server certificate and key files in a TLS cluster's
/// directory.
const CA_CERT_FILE: &str = "ca.crt";
pub(crate) const SERVER_CERT_FILE: &str = "server.crt";
pub(crate) const SERVER_KEY_FILE: &str = "server.key";

/// Puts the certificates of a TLS cluster in `dir` (the key readable by the
/// server's user only, as PostgreSQL demands) and makes `pg_hba.conf` accept
/// TCP connections over TLS only. Returns the CA certificate's path.
pub(crate) fn install_tls(
    certs: &TestCertificates,
    dir: &Path,
    as_postgres: bool,
) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let write = |name: &str, text: &str, mode: u32| -> Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)))
            .map_err(|e| io(&format!("cannot write {}", path.display()), e))?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&path))?;
        }
        Ok(path)
    };
    let ca = write(CA_CERT_FILE, certs.ca_pem(), 0o644)?;
    write(SERVER_CERT_FILE, certs.server_cert_pem(), 0o644)?;
    write(
        SERVER_KEY_FILE,
        certs.server_key_pem().expose_secret(),
        0o600,
    )?;
    // Replaces the template's rules: the existing file keeps its owner.
    std::fs::write(
        dir.join("data").join("pg_hba.conf"),
        "# strongroom-testpg: TLS only\n\
         local   all all                 trust\n\
         hostssl all all 127.0.0.1/32    scram-sha-256\n\
         hostssl all all ::1/128         scram-sha-256\n",
    )
    .map_err(|e| io("cannot write pg_hba.conf", e))?;
    Ok(ca)
}
