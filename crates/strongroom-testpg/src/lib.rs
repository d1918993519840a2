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
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};
use strongroom::SecretString;

mod data_dir;
mod tls;
mod tools;
mod url;

use data_dir::{DIR_PREFIX, OWNER_FILE, create_data_dir, sweep_stale_clusters};
pub use tls::TestCertificates;
use tls::{SERVER_CERT_FILE, SERVER_KEY_FILE, install_tls};
pub use tools::find_bindir;
use tools::{append, check, free_port, io, pg_command, random_password, run, running_as_root};

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
