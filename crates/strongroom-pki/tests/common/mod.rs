//! A store, its clock, an audit sink, principals and a mount, for the
//! integration tests. Several "processes" share one `MemoryStorage`.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strongroom::audit::{AuditLog, MemorySink};
use strongroom::clock::{ManualClock, Timestamp};
use strongroom::dangerous::Door;
use strongroom::lease::{LeaseConfig, LeaseManager};
use strongroom::policy::{Policy, Principal};
use strongroom::protector::SoftwareProtector;
use strongroom::storage::{DynStorage, MemoryStorage};
use strongroom::{Handle, Options, SecretBytes, Strongroom};
use strongroom_pki::{Pki, Role};

pub const ADMIN_POLICY: &str = r#"
    name = "pki-admin"
    [[path]]
    pattern = "pki/*"
    capabilities = ["read", "sudo", "lease"]
"#;

pub const APP_POLICY: &str = r#"
    name = "app"
    [[path]]
    pattern = "pki/+/issue/web"
    capabilities = ["lease"]
    [[path]]
    pattern = "pki/+/crl"
    capabilities = ["read"]
    [[path]]
    pattern = "pki/+/ca"
    capabilities = ["read"]
"#;

/// One process's view of the shared store.
pub struct Process {
    pub sr: Strongroom,
    pub sink: Arc<MemorySink>,
    pub audit: Arc<AuditLog>,
    pub door: Door,
    pub manager: Arc<LeaseManager>,
    pub pki: Pki,
    pub admin: Handle,
    pub app: Handle,
}

impl Process {
    pub fn mount(&self, mount: &str) -> Pki {
        Pki::new(&self.door, self.manager.clone(), mount).unwrap()
    }
}

pub struct World {
    pub storage: DynStorage,
    pub clock: Arc<ManualClock>,
}

/// Now, to the whole second.
pub fn real_now() -> Timestamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp::from_secs(secs)
}

impl World {
    /// A store whose manual clock starts at `start`.
    pub async fn new(start: Timestamp) -> (World, Process) {
        let storage: DynStorage = Arc::new(MemoryStorage::new());
        let clock = Arc::new(ManualClock::new(start));
        let options = Options {
            clock: clock.clone(),
            ..Options::default()
        };
        let sr = Strongroom::init(storage.clone(), &protector(), options)
            .await
            .unwrap();
        let world = World { storage, clock };
        let p = world.process(sr).await;
        (world, p)
    }

    /// Another process unsealing the same store.
    pub async fn join(&self) -> Process {
        let options = Options {
            clock: self.clock.clone(),
            ..Options::default()
        };
        let sr = Strongroom::unseal(self.storage.clone(), &protector(), options)
            .await
            .unwrap();
        self.process(sr).await
    }

    async fn process(&self, sr: Strongroom) -> Process {
        let sink = Arc::new(MemorySink::new());
        let audit = Arc::new(sr.open_audit_log(vec![sink.clone()], None).await.unwrap());
        let door = sr.dangerous("pki-test", &audit).await.unwrap();
        let manager = Arc::new(
            door.lease_manager(self.clock.clone(), LeaseConfig::default())
                .unwrap()
                .with_audit(audit.clone()),
        );
        let pki = Pki::new(&door, manager.clone(), "int").unwrap();
        let admin_policy = Policy::from_toml_str(ADMIN_POLICY).unwrap();
        let app_policy = Policy::from_toml_str(APP_POLICY).unwrap();
        let admin = sr.as_principal(Principal::new("ops", [&admin_policy]), audit.clone());
        let app = sr.as_principal(Principal::new("app", [&app_policy]), audit.clone());
        Process {
            sr,
            sink,
            audit,
            door,
            manager,
            pki,
            admin,
            app,
        }
    }
}

fn protector() -> SoftwareProtector {
    SoftwareProtector::from_key(SecretBytes::new(vec![9; 32])).unwrap()
}

pub const HOUR: Duration = Duration::from_secs(3600);

/// The role `web` of the tests.
pub fn web_role() -> Role {
    Role::new(["api.example.com", "*.svc.example.com"])
        .allow_localhost(true)
        .allow_ip_sans(true)
        .ttl(HOUR, 4 * HOUR)
}
