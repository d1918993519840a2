//! Verifier and config builders that trust a mount's CA and honour its
//! CRL, and a client verifier that takes a new CRL without a restart.

use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};

use crate::error::{PkiError, Result};
use crate::{CaCertificate, Crl};

/// What a TLS peer trusts: the roots of one or more internal CAs, and the
/// CRLs to check certificates against.
///
/// Revocation: with no CRL, nothing is checked for revocation. With CRLs,
/// the end-entity certificate must be covered by one of them (a CRL from
/// its issuer), or the handshake fails ("unknown revocation status"); add
/// the CRL of the mount that issued the peer's certificate. Only the
/// end-entity certificate is checked unless
/// [`check_whole_chain`](Self::check_whole_chain) is set (then every CA
/// in the chain below the root needs its issuer's CRL too). A CRL past its
/// `next_update` is still used unless
/// [`enforce_crl_expiry`](Self::enforce_crl_expiry) is set.
#[derive(Clone)]
pub struct TrustConfig {
    roots: Vec<CertificateDer<'static>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    provider: Arc<CryptoProvider>,
    whole_chain: bool,
    enforce_expiry: bool,
}

impl fmt::Debug for TrustConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustConfig")
            .field("roots", &self.roots.len())
            .field("crls", &self.crls.len())
            .field("whole_chain", &self.whole_chain)
            .field("enforce_expiry", &self.enforce_expiry)
            .finish_non_exhaustive()
    }
}

impl TrustConfig {
    /// Trusts the root above `ca` (rustls's `ring` provider).
    pub fn new(ca: &CaCertificate) -> Self {
        Self {
            roots: vec![ca.root().clone()],
            crls: Vec::new(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            whole_chain: false,
            enforce_expiry: false,
        }
    }

    /// Also trusts the root above `ca`.
    #[must_use]
    pub fn add_ca(mut self, ca: &CaCertificate) -> Self {
        if !self.roots.contains(ca.root()) {
            self.roots.push(ca.root().clone());
        }
        self
    }

    /// Checks certificates against `crl` too.
    #[must_use]
    pub fn with_crl(mut self, crl: &Crl) -> Self {
        self.crls.push(crl.der.clone());
        self
    }

    /// Uses `provider` for signatures and keys.
    #[must_use]
    pub fn with_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = provider;
        self
    }

    /// Checks every certificate of the chain for revocation, not only the
    /// end entity.
    #[must_use]
    pub fn check_whole_chain(mut self) -> Self {
        self.whole_chain = true;
        self
    }

    /// Refuses certificates when the CRL that covers them is past its
    /// `next_update`.
    #[must_use]
    pub fn enforce_crl_expiry(mut self) -> Self {
        self.enforce_expiry = true;
        self
    }

    /// The crypto provider.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    fn root_store(&self) -> Result<Arc<RootCertStore>> {
        let mut roots = RootCertStore::empty();
        for r in &self.roots {
            roots.add(r.clone()).map_err(PkiError::tls)?;
        }
        Ok(Arc::new(roots))
    }

    /// A verifier of client certificates (for a server), requiring one.
    pub fn client_verifier(&self) -> Result<Arc<dyn ClientCertVerifier>> {
        let mut b =
            WebPkiClientVerifier::builder_with_provider(self.root_store()?, self.provider.clone())
                .with_crls(self.crls.iter().cloned());
        if !self.whole_chain {
            b = b.only_check_end_entity_revocation();
        }
        if self.enforce_expiry {
            b = b.enforce_revocation_expiration();
        }
        b.build().map_err(PkiError::tls)
    }

    /// A verifier of server certificates (for a client).
    pub fn server_verifier(&self) -> Result<Arc<WebPkiServerVerifier>> {
        let mut b =
            WebPkiServerVerifier::builder_with_provider(self.root_store()?, self.provider.clone())
                .with_crls(self.crls.iter().cloned());
        if !self.whole_chain {
            b = b.only_check_end_entity_revocation();
        }
        if self.enforce_expiry {
            b = b.enforce_revocation_expiration();
        }
        b.build().map_err(PkiError::tls)
    }

    /// A server config for mutual TLS: its certificate from `resolver`,
    /// client certificates required and checked by `verifier` (e.g.
    /// [`client_verifier`](Self::client_verifier) or a
    /// [`ReloadableClientVerifier`]).
    pub fn server_config(
        &self,
        verifier: Arc<dyn ClientCertVerifier>,
        resolver: Arc<dyn ResolvesServerCert>,
    ) -> Result<ServerConfig> {
        Ok(ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(PkiError::tls)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(resolver))
    }

    /// A client config trusting these roots (and CRLs), presenting the
    /// certificate from `resolver` if the server asks for one.
    pub fn client_config(
        &self,
        resolver: Option<Arc<dyn ResolvesClientCert>>,
    ) -> Result<ClientConfig> {
        let b = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(PkiError::tls)?
            .with_webpki_verifier(self.server_verifier()?);
        Ok(match resolver {
            Some(r) => b.with_client_cert_resolver(r),
            None => b.with_no_client_auth(),
        })
    }
}

/// A client-certificate verifier whose inner verifier can be replaced
/// while the server runs, e.g. by one built with a newer CRL: handshakes
/// that start after [`replace`](Self::replace) use the new one.
///
/// The root hint subjects sent to clients are the first verifier's;
/// replace it only with a verifier for the same roots.
pub struct ReloadableClientVerifier {
    hints: Vec<DistinguishedName>,
    inner: RwLock<Arc<dyn ClientCertVerifier>>,
}

impl fmt::Debug for ReloadableClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableClientVerifier")
            .field("inner", &self.current())
            .finish()
    }
}

impl ReloadableClientVerifier {
    /// Starts with `verifier`.
    pub fn new(verifier: Arc<dyn ClientCertVerifier>) -> Arc<Self> {
        Arc::new(Self {
            hints: verifier.root_hint_subjects().to_vec(),
            inner: RwLock::new(verifier),
        })
    }

    /// Uses `verifier` from now on.
    pub fn replace(&self, verifier: Arc<dyn ClientCertVerifier>) {
        *self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = verifier;
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl ClientCertVerifier for ReloadableClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.current().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current().client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}
