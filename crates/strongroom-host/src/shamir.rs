//! Shamir sharing in the text form every binding hands to its host:
//! `srs1-...` strings (see [`strongroom::shamir`]).

use strongroom::shamir::{self, ShamirProtector, Share};
use strongroom::{SecretBytes, SecretString};

/// Splits `secret` into `shares` share texts, any `threshold` of which
/// rebuild it.
///
/// # Errors
///
/// As for [`shamir::split`] (a threshold below 2 or above `shares`, an
/// empty secret).
pub fn split(
    secret: &SecretBytes,
    threshold: u8,
    shares: u8,
) -> strongroom::Result<Vec<SecretString>> {
    Ok(shamir::split(secret, threshold, shares)?
        .iter()
        .map(Share::to_text)
        .collect())
}

/// Rebuilds a secret from share texts (a bad one is named by its index).
///
/// # Errors
///
/// As for [`Share::parse_all`] and [`shamir::combine`] (too few shares,
/// shares of different splits, a mistyped share).
pub fn combine<S: AsRef<str>>(texts: &[S]) -> strongroom::Result<SecretBytes> {
    shamir::combine(&Share::parse_all(texts)?)
}

/// A new Shamir protector and its share texts.
///
/// # Errors
///
/// As for [`ShamirProtector::generate`].
pub fn generate_protector(
    threshold: u8,
    shares: u8,
) -> strongroom::Result<(ShamirProtector, Vec<SecretString>)> {
    let (protector, parts) = ShamirProtector::generate(threshold, shares)?;
    Ok((protector, parts.iter().map(Share::to_text).collect()))
}

/// The Shamir protector rebuilt from share texts.
///
/// # Errors
///
/// As for [`combine`] and [`ShamirProtector::from_shares`].
pub fn protector<S: AsRef<str>>(texts: &[S]) -> strongroom::Result<ShamirProtector> {
    ShamirProtector::from_shares(&Share::parse_all(texts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_bad_ones_are_typed() {
        let secret = SecretBytes::from("launch code");
        let texts = split(&secret, 2, 3).unwrap();
        let two = [texts[0].expose_secret(), texts[2].expose_secret()];
        assert_eq!(combine(&two).unwrap(), secret);
        assert!(combine(&[texts[0].expose_secret()]).is_err());
        // The last character changed to one it is not (the old test looked
        // at the character before it, so a share ending in 'A' stayed whole).
        let mut bad = texts[1].expose_secret().to_owned();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        assert_ne!(bad, texts[1].expose_secret());
        assert!(combine(&[texts[0].expose_secret(), bad.as_str()]).is_err());
    }
}
