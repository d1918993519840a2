//! Test support: a private PostgreSQL server for each test process.
//!
//! [`TestPostgres::shared`] starts a throwaway cluster from the machine's own
//! server binaries (`initdb`, `pg_ctl`) the first time a test asks for one,
//! and hands the same cluster to every test in the binary that asks while it
//! is running. When the last test drops its handle the server is stopped
//! (`pg_ctl -m fast stop`) and its directory removed.
//!
//! The cluster listens on `127.0.0.1` on a free port with `scram-sha-256`
//! password authentication for TCP connections (so a wrong password really
//! fails), under a random superuser password. Its unix socket lives in the
//! cluster's private temporary directory.
//!
//! [`TestPostgres::start_tls`] (and [`TestPostgres::shared_tls`]) start a
//! private cluster that accepts TLS connections only (`ssl = on`, every
//! `pg_hba.conf` TCP line `hostssl`, so a plaintext connection is refused),
//! with a server certificate for `127.0.0.1` and `localhost` issued by a
//! throwaway CA made for that cluster ([`TestCertificates`]); its
//! certificate is at [`TestPostgres::tls_root_cert`].
//!
//! If `STRONGROOM_TEST_PG_URL` is set (a superuser URL such as
//! `postgres://postgres:pw@127.0.0.1:5432/postgres`) that server is used and
//! nothing is started. Otherwise the binaries are looked up in
//! `STRONGROOM_PG_BINDIR`, then `pg_config --bindir`, then the newest
//! `/usr/lib/postgresql/*/bin`; if none is found [`TestPostgres::shared`]
//! fails with a message saying what to install. Tests never skip.
//!
//! When the tests run as root, `initdb` and `pg_ctl` run as the `postgres`
//! user (`runuser -u postgres --`), which owns the cluster directory.
//!
//! The first cluster on a machine is made with `initdb` (about 3 s); a copy
//! of its fresh data directory is kept as a template in
//! `$TMPDIR/strongroom-pgtemplate-<uid>-<server version>`, and later clusters
//! start from a copy of it (about 1 s), with a new random superuser password
//! set in single-user mode before the server listens. A template that fails
//! to start is deleted and rebuilt.
//!
//! Each cluster lives in `$TMPDIR/strongroom-testpg-*` with an `owner.pid`
//! file. A test process killed before it could stop its server leaves the
//! cluster behind; the next private cluster started on the machine stops
//! and removes clusters whose owner process no longer exists.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), strongroom_testpg::TestPgError> {
//! use strongroom_testpg::TestPostgres;
//!
//! let pg = TestPostgres::shared()?;
//! // A fresh database for this test, so tests running in parallel do not meet.
//! let url = pg.fresh_database("mytest").await?;
//! let pool = sqlx::PgPool::connect(&url).await?;
//! sqlx::query("SELECT 1").execute(&pool).await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

use std::fmt;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};
use strongroom::SecretString;

/// Names the superuser URL of an existing server to use instead of starting one.
pub const URL_ENV: &str = "STRONGROOM_TEST_PG_URL";
/// Names the directory holding `initdb` and `pg_ctl`.
pub const BINDIR_ENV: &str = "STRONGROOM_PG_BINDIR";

/// The superuser this harness creates.
pub const SUPERUSER: &str = "postgres";

/// What can go wrong starting or using the test server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestPgError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "no PostgreSQL server binaries found (looked in: {searched}); install the server (Debian: apt-get install postgresql) or set {BINDIR_ENV} to the directory holding initdb and pg_ctl, or set {URL_ENV} to a superuser URL of a running server"
    )]
    BinariesNotFound {
        /// Where the harness looked.
        searched: String,
    },
    /// A command failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line (holds no password).
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard output and error.
        output: String,
    },
    /// A file-system or process error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// `STRONGROOM_TEST_PG_URL` could not be parsed.
    #[error("{URL_ENV} is not a valid postgres:// URL")]
    BadUrl,
    /// An SQL statement failed.
    #[error("sql: {0}")]
    Sql(#[from] sqlx::Error),
    /// The harness's lock was poisoned by a panicking test.
    #[error("the shared test server lock was poisoned by a panicking test")]
    Poisoned,
    /// A test certificate could not be made.
    #[error("cannot generate a test certificate: {0}")]
    Certificate(String),
}

/// Shorthand for this crate's results.
pub type Result<T, E = TestPgError> = std::result::Result<T, E>;

/// A running PostgreSQL server for tests: a private cluster this process
/// started (stopped and deleted on drop), or an external one named by
/// `STRONGROOM_TEST_PG_URL`.
pub struct TestPostgres {
    host: String,
    port: u16,
    user: String,
    password: SecretString,
    /// `Some` when this process started (and owns) the cluster.
    cluster: Option<Cluster>,
    /// The CA certificate file of a TLS-only cluster.
    tls_root_cert: Option<PathBuf>,
}

struct Cluster {
    /// The temporary directory: `data/`, `log`, the unix socket.
    dir: tempfile::TempDir,
    bindir: PathBuf,
    as_postgres: bool,
}

impl fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPostgres")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .field("dir", &self.cluster.as_ref().map(|c| c.dir.path()))
            .field("tls_root_cert", &self.tls_root_cert)
            .finish()
    }
}

static SHARED: Mutex<Weak<TestPostgres>> = Mutex::new(Weak::new());
static SHARED_TLS: Mutex<Weak<TestPostgres>> = Mutex::new(Weak::new());
static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestPostgres {
    /// The server shared by every test of this process: started on first use
    /// and stopped when the last `Arc` is dropped. Blocks while the cluster
    /// starts (about 3 s).
    ///
    /// # Errors
    ///
    /// [`TestPgError::BinariesNotFound`] when no server binaries exist, or the
    /// failing command's output if the cluster did not start.
    pub fn shared() -> Result<Arc<Self>> {
        let mut slot = SHARED.lock().map_err(|_| TestPgError::Poisoned)?;
        if let Some(pg) = slot.upgrade() {
            return Ok(pg);
        }
        let pg = Arc::new(Self::start()?);
        *slot = Arc::downgrade(&pg);
        Ok(pg)
    }

    /// Starts a new server not shared with anything (or connects to the
    /// external one). Most tests want [`TestPostgres::shared`]; this is for
    /// tests that stop or break their server.
    ///
    /// # Errors
    ///
    /// As for [`TestPostgres::shared`].
    pub fn start() -> Result<Self> {
        match std::env::var(URL_ENV) {
            Ok(url) if !url.is_empty() => Self::external(&url),
            _ => Self::private(None),
        }
    }

    /// The TLS-only server shared by every test of this process that asks
    /// for one (see [`TestPostgres::start_tls`]); stopped when the last `Arc`
    /// is dropped.
    ///
    /// # Errors
    ///
    /// As for [`TestPostgres::start_tls`].
    pub fn shared_tls() -> Result<Arc<Self>> {
        let mut slot = SHARED_TLS.lock().map_err(|_| TestPgError::Poisoned)?;
        if let Some(pg) = slot.upgrade() {
            return Ok(pg);
        }
        let pg = Arc::new(Self::start_tls()?);
        *slot = Arc::downgrade(&pg);
        Ok(pg)
    }

    /// Starts a private cluster that accepts TCP connections over TLS only:
    /// `ssl = on` with a certificate for `127.0.0.1` and `localhost` issued
    /// by a CA generated for this cluster (its certificate is at
    /// [`TestPostgres::tls_root_cert`]), and `hostssl` lines only in
    /// `pg_hba.conf`, so `sslmode=disable` is refused with SQLSTATE 28000.
    /// Always a private cluster: `STRONGROOM_TEST_PG_URL` is not used, since
    /// the test needs control of the server's TLS settings.
    ///
    /// The URLs of such a cluster ([`TestPostgres::database_url`] and
    /// friends) carry no `sslmode`, so clients use their default (`prefer`:
    /// TLS without checking the certificate); append
    /// `?sslmode=verify-full&sslrootcert=<tls_root_cert>` to check it.
    /// [`TestPostgres::connect_options`] checks it (`verify-full`).
    ///
    /// # Errors
    ///
    /// As for [`TestPostgres::shared`], and [`TestPgError::Certificate`].
    pub fn start_tls() -> Result<Self> {
        let certs = TestCertificates::generate(&["127.0.0.1", "localhost"])?;
        Self::start_tls_with(&certs)
    }

    /// As [`TestPostgres::start_tls`], with the server certificate (and CA)
    /// of `certs`: for tests of certificates that do not match the server.
    ///
    /// # Errors
    ///
    /// As for [`TestPostgres::start_tls`].
    pub fn start_tls_with(certs: &TestCertificates) -> Result<Self> {
        Self::private(Some(certs))
    }

    fn external(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url).map_err(|_| TestPgError::BadUrl)?;
        let password = url::password(url).unwrap_or_default();
        Ok(Self {
            host: opts.get_host().to_owned(),
            port: opts.get_port(),
            user: opts.get_username().to_owned(),
            password: SecretString::new(password),
            cluster: None,
            tls_root_cert: None,
        })
    }

    fn private(tls: Option<&TestCertificates>) -> Result<Self> {
        let bindir = find_bindir()?;
        let as_postgres = running_as_root();
        sweep_stale_clusters(&bindir, as_postgres);
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .map_err(|e| io("cannot create a temporary directory", e))?;
        std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
            .map_err(|e| io("cannot write the owner file", e))?;
        let password = random_password()?;
        if as_postgres {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(dir.path()))?;
        }
        let data = dir.path().join("data");
        create_data_dir(&bindir, as_postgres, dir.path(), &password)?;
        let tls_root_cert = match tls {
            Some(certs) => Some(install_tls(certs, dir.path(), as_postgres)?),
            None => None,
        };

        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let mut conf = format!(
                "\n# strongroom-testpg\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\nmax_connections = 200\nlog_line_prefix = '%m [%p] %q%u@%d '\n",
                dir.path().display()
            );
            if tls.is_some() {
                conf.push_str(&format!(
                    "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                    dir.path().join(SERVER_CERT_FILE).display(),
                    dir.path().join(SERVER_KEY_FILE).display()
                ));
            }
            append(&data.join("postgresql.conf"), &conf)?;
            let started = pg_command(&bindir, "pg_ctl", as_postgres)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("log"))
                .args(["-w", "-t", "60", "start"])
                .stdin(Stdio::null())
                .output();
            match check("pg_ctl start", started) {
                Ok(_) => {
                    return Ok(Self {
                        host: "127.0.0.1".to_owned(),
                        port,
                        user: SUPERUSER.to_owned(),
                        password,
                        cluster: Some(Cluster {
                            dir,
                            bindir,
                            as_postgres,
                        }),
                        tls_root_cert,
                    });
                }
                // Most likely another process took the port; try another.
                Err(e) => last_error = Some(e),
            }
        }
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        Err(match last_error {
            Some(TestPgError::Command {
                command,
                status,
                output,
            }) => TestPgError::Command {
                command,
                status,
                output: format!("{output}\nserver log:\n{log}"),
            },
            Some(other) => other,
            None => TestPgError::Poisoned,
        })
    }

    /// The host to connect to (`127.0.0.1` for a private cluster).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's name.
    pub fn superuser(&self) -> &str {
        &self.user
    }

    /// The superuser's password.
    pub fn superuser_password(&self) -> SecretString {
        SecretString::new(self.password.expose_secret().to_owned())
    }

    /// A URL for the superuser on the `postgres` database. It contains the
    /// (throwaway) superuser password: do not log it.
    pub fn superuser_url(&self) -> String {
        self.database_url("postgres")
    }

    /// A superuser URL for database `name` (which must exist).
    pub fn database_url(&self, name: &str) -> String {
        self.url_for(&self.user, self.password.expose_secret(), name)
    }

    /// A URL for any role and database on this server; the user name and
    /// password are percent-encoded.
    pub fn url_for(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{}",
            url::encode(user),
            url::encode(password),
            self.host,
            self.port,
            url::encode(database)
        )
    }

    /// Superuser connect options for database `name` (on a TLS cluster:
    /// `sslmode=verify-full` against [`TestPostgres::tls_root_cert`]).
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        let options = PgConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(self.password.expose_secret())
            .database(database)
            .disable_statement_logging();
        match &self.tls_root_cert {
            Some(ca) => options.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert(ca),
            None => options,
        }
    }

    /// The file holding the CA certificate that issued the server's
    /// certificate, on a cluster from [`TestPostgres::start_tls`].
    pub fn tls_root_cert(&self) -> Option<&Path> {
        self.tls_root_cert.as_deref()
    }

    /// The server log of a private cluster (`None` for an external server).
    /// Authentication failures are told apart only here: PostgreSQL sends
    /// every client the same SQLSTATE 28P01.
    pub fn log_path(&self) -> Option<PathBuf> {
        self.cluster.as_ref().map(|c| c.dir.path().join("log"))
    }

    /// The server log's text so far (empty for an external server).
    pub fn read_log(&self) -> String {
        self.log_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// The cluster's private directory (data directory and socket), if this
    /// process started the server.
    pub fn dir(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.dir.path())
    }

    /// Creates database `name` (dropping an old one of that name first) and
    /// returns a superuser URL for it.
    ///
    /// # Errors
    ///
    /// [`TestPgError::Sql`] if the server refuses.
    pub async fn create_database(&self, name: &str) -> Result<String> {
        let mut conn = self.connect_options("postgres").connect().await?;
        for template in [
            "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text)",
            "SELECT format('CREATE DATABASE %I', $1::text)",
        ] {
            let sql: String = sqlx::query_scalar(template)
                .bind(name)
                .fetch_one(&mut conn)
                .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
        }
        let _ = conn.close().await;
        Ok(self.database_url(name))
    }

    /// Creates a database with a name unique to this process (from `label`,
    /// the process id and a counter) and returns a superuser URL for it.
    ///
    /// # Errors
    ///
    /// As for [`TestPostgres::create_database`].
    pub async fn fresh_database(&self, label: &str) -> Result<String> {
        let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(30)
            .collect::<String>()
            .to_ascii_lowercase();
        self.create_database(&format!("{label}_{}_{n}", std::process::id()))
            .await
    }

    /// Stops the server now (a private cluster only; no-op otherwise).
    /// Dropping the last handle does the same.
    /// Starts a smart shutdown of this harness's own cluster and returns at
    /// once: the server keeps its open sessions but refuses new ones with
    /// SQLSTATE `57P03` until they end. Returns `false` (and does nothing)
    /// for an external server named by the environment.
    pub fn begin_smart_shutdown(&self) -> Result<bool> {
        let Some(c) = &self.cluster else {
            return Ok(false);
        };
        let out = pg_command(&c.bindir, "pg_ctl", c.as_postgres)
            .arg("-D")
            .arg(c.dir.path().join("data"))
            .args(["-m", "smart", "-W", "stop"])
            .stdin(Stdio::null())
            .output();
        check("pg_ctl stop -m smart", out)?;
        Ok(true)
    }

    fn stop(&self) {
        if let Some(c) = &self.cluster {
            let _ = pg_command(&c.bindir, "pg_ctl", c.as_postgres)
                .arg("-D")
                .arg(c.dir.path().join("data"))
                .args(["-m", "fast", "-w", "stop"])
                .stdin(Stdio::null())
                .output();
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
        // The TempDir removes the directory when `cluster` drops.
    }
}

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
const SERVER_CERT_FILE: &str = "server.crt";
const SERVER_KEY_FILE: &str = "server.key";

/// Puts the certificates of a TLS cluster in `dir` (the key readable by the
/// server's user only, as PostgreSQL demands) and makes `pg_hba.conf` accept
/// TCP connections over TLS only. Returns the CA certificate's path.
fn install_tls(certs: &TestCertificates, dir: &Path, as_postgres: bool) -> Result<PathBuf> {
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

/// The file in a cluster directory naming the process that owns it.
const OWNER_FILE: &str = "owner.pid";
/// The prefix of every cluster directory in the temporary directory.
const DIR_PREFIX: &str = "strongroom-testpg-";
/// The prefix of the cached template clusters in the temporary directory.
const TEMPLATE_PREFIX: &str = "strongroom-pgtemplate-";

/// Stops and removes clusters left behind by test processes that were killed
/// before they could stop their server (their owner process is gone).
fn sweep_stale_clusters(bindir: &Path, as_postgres: bool) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        // No owner file yet: another process is creating it right now.
        let Some(pid) = std::fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let data = dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = pg_command(bindir, "pg_ctl", as_postgres)
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .output();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Creates the cluster's data directory in `dir/data` with `password` for
/// the superuser: a copy of this machine's cached template cluster (fast), or
/// a fresh `initdb` (about 3 s) that then becomes the template.
fn create_data_dir(
    bindir: &Path,
    as_postgres: bool,
    dir: &Path,
    password: &SecretString,
) -> Result<()> {
    let data = dir.join("data");
    let template = template_dir(bindir);
    if let Some(template) = &template
        && template.join("PG_VERSION").is_file()
    {
        let copied = run(Command::new("cp").arg("-a").arg(template).arg(&data))
            .and_then(|_| set_password(bindir, as_postgres, &data, password));
        if copied.is_ok() {
            return Ok(());
        }
        // A damaged template: forget it and initdb afresh.
        let _ = std::fs::remove_dir_all(template);
        let _ = std::fs::remove_dir_all(&data);
    }
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, format!("{}\n", password.expose_secret()))
        .map_err(|e| io("cannot write the password file", e))?;
    if as_postgres {
        run(Command::new("chown").arg("postgres:").arg(&pwfile))?;
    }
    let initdb = pg_command(bindir, "initdb", as_postgres)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["-E", "UTF8", "--no-locale", "--no-sync"])
        .output();
    // The password file is not needed once the cluster exists.
    let _ = std::fs::remove_file(&pwfile);
    check("initdb", initdb)?;
    if let Some(template) = template {
        // Publish the template atomically; another process may win the race.
        let mut tmp = template.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_dir_all(&tmp);
        if run(Command::new("cp").arg("-a").arg(&data).arg(&tmp)).is_ok()
            && std::fs::rename(&tmp, &template).is_err()
        {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Ok(())
}

/// Where the template cluster for these binaries lives: keyed by the user
/// and the exact server version, so an upgrade gets a new template.
fn template_dir(bindir: &Path) -> Option<PathBuf> {
    let out = Command::new(bindir.join("pg_ctl"))
        .arg("--version")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let version: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok()?;
    Some(std::env::temp_dir().join(format!(
        "{TEMPLATE_PREFIX}{uid}-{}",
        version.trim_matches('_')
    )))
}

/// Gives the superuser of a stopped cluster a new password (single-user mode,
/// the password travelling on stdin, never on a command line).
fn set_password(
    bindir: &Path,
    as_postgres: bool,
    data: &Path,
    password: &SecretString,
) -> Result<()> {
    use std::io::Write;
    let mut child = pg_command(bindir, "postgres", as_postgres)
        .arg("--single")
        .arg("-D")
        .arg(data)
        .arg("postgres")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io("cannot run postgres --single", e))?;
    // The password is hex, so it needs no escaping inside the literal.
    let statement = format!(
        "ALTER ROLE {SUPERUSER} PASSWORD '{}';\n",
        password.expose_secret()
    );
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(statement.as_bytes())
            .map_err(|e| io("cannot write to postgres --single", e))?;
    }
    let out = child.wait_with_output();
    let out = check("postgres --single", out)?;
    let text = String::from_utf8_lossy(&out.stderr);
    if text.contains("ERROR") {
        return Err(TestPgError::Command {
            command: "postgres --single (ALTER ROLE)".to_owned(),
            status: "error".to_owned(),
            output: text.into_owned(),
        });
    }
    Ok(())
}

fn io(what: &str, source: std::io::Error) -> TestPgError {
    TestPgError::Io {
        what: what.to_owned(),
        source,
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| io(&format!("cannot write {}", path.display()), e))
}

fn pg_command(bindir: &Path, program: &str, as_postgres: bool) -> Command {
    let exe = bindir.join(program);
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn run(c: &mut Command) -> Result<Output> {
    let name = describe(c);
    check(&name, c.output())
}

fn check(name: &str, out: std::io::Result<Output>) -> Result<Output> {
    let out = out.map_err(|e| io(&format!("cannot run {name}"), e))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(TestPgError::Command {
            command: name.to_owned(),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

fn running_as_root() -> bool {
    // The owner of /proc/self is the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// Finds the directory holding `initdb` and `pg_ctl`.
pub fn find_bindir() -> Result<PathBuf> {
    let mut searched = Vec::new();
    if let Ok(dir) = std::env::var(BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Ok(dir);
        }
        searched.push(format!("{BINDIR_ENV}={}", dir.display()));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
            searched.push(format!("pg_config --bindir ({})", dir.display()));
        }
    } else {
        searched.push("pg_config (not installed)".to_owned());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| has_server(p))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    searched.push("/usr/lib/postgresql/*/bin".to_owned());
    Err(TestPgError::BinariesNotFound {
        searched: searched.join(", "),
    })
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| io("cannot pick a free port", e))?;
    let port = l
        .local_addr()
        .map_err(|e| io("cannot pick a free port", e))?
        .port();
    Ok(port)
}

fn random_password() -> Result<SecretString> {
    let bytes = strongroom::SecretBytes::random(24).map_err(|e| {
        io(
            "cannot generate a password",
            std::io::Error::other(e.to_string()),
        )
    })?;
    let mut s = String::with_capacity(48);
    for b in bytes.expose_secret() {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(SecretString::new(s))
}

mod url {
    //! Just enough URL handling for connection strings.

    /// Percent-encodes everything but unreserved characters.
    pub(crate) fn encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (b, hex) {
                (b'%', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                _ => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The decoded password of `scheme://user:password@host...`, if any.
    pub(crate) fn password(url: &str) -> Option<String> {
        let rest = url.split_once("://")?.1;
        let authority = rest.split(['/', '?']).next()?;
        let userinfo = authority.rsplit_once('@')?.0;
        let pw = userinfo.split_once(':')?.1;
        Some(decode(pw))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trip() {
            let pw = "p@ss:w/rd%é";
            let url = format!("postgres://u:{}@h:1/db", super::encode(pw));
            assert_eq!(super::password(&url).as_deref(), Some(pw));
            assert_eq!(super::password("postgres://u@h/db"), None);
        }
    }
}
