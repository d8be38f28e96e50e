//! PLACEHOLDER: the dispatch over providers, filled at merge.
use serde_json::Value;

use super::message::{Inbound, Outgoing, Provider};
use crate::signatures::{Headers, Rejection};

pub type Call = Vec<(&'static str, Value)>;

pub fn handshake(_p: Provider, _query: &str, _tokens: &[&str]) -> Result<String, Rejection> {
    Err(Rejection::Mismatch)
}

pub fn verify<H: Headers + ?Sized>(
    _p: Provider,
    _secrets: &[&str],
    _headers: &H,
    _public_url: Option<&str>,
    _body: &[u8],
) -> Result<(), Rejection> {
    Err(Rejection::Mismatch)
}

pub fn normalise(_p: Provider, _body: &[u8]) -> Result<Vec<Inbound>, String> {
    Ok(Vec::new())
}

pub fn render(
    _p: Provider,
    _to: &str,
    _business: Option<&str>,
    _out: &Outgoing,
    _list_button: &str,
) -> Vec<Call> {
    Vec::new()
}

pub fn template(
    _p: Provider,
    _to: &str,
    _business: Option<&str>,
    _name: &str,
    _language: &str,
) -> Call {
    Vec::new()
}
