//! Cross-origin access for browsers: the company's site (the widget) and the console call the
//! chat API from their own origins. Only the origins configured (`ALLOWED_ORIGINS`, exact
//! `scheme://host[:port]`, comma-separated) are answered; a page anywhere else gets no CORS
//! headers, so its browser keeps the responses from it. Tokens travel in `Authorization`, never
//! cookies: credentials are not allowed, so no other site can ride a customer's session.
//!
//! In AWS the HTTP API's CorsConfiguration answers preflights before its JWT authorizer (which
//! would refuse them: a preflight carries no token); this answers them where nothing is in
//! front (function URLs, the local stack) and decorates every response the same way.

use crate::config::{ConfigError, Env};
use crate::http_event::{HttpEvent, HttpResponse};

/// How long a browser may reuse a preflight's answer (seconds).
const MAX_AGE_SECS: u32 = 600;
const METHODS: &str = "GET, POST, DELETE, OPTIONS";
const HEADERS: &str = "authorization, content-type";
/// What a script may read of a response beyond the simple headers: how long to wait.
const EXPOSED: &str = "retry-after";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    pub fn new(origins: Vec<String>) -> Self {
        Self { origins }
    }

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        const NAME: &str = "ALLOWED_ORIGINS";
        let Some(raw) = env.optional(NAME) else {
            return Ok(Self::default());
        };
        let mut origins = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            origins.push(parse_origin(origin).map_err(|reason| ConfigError::Invalid {
                name: NAME,
                reason: format!("{origin}: {reason}"),
            })?);
        }
        Ok(Self { origins })
    }

    /// The request's `Origin` when it is one of the allowed.
    fn allowed<'e>(&self, event: &'e HttpEvent) -> Option<&'e str> {
        let origin = event.header("origin")?;
        self.origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
            .then_some(origin)
    }

    /// A preflight (`OPTIONS`) answered: 204 with what the origin may send, or 403 for an
    /// origin that is not allowed. `None` for any other method.
    pub fn preflight(&self, event: &HttpEvent) -> Option<HttpResponse> {
        if !event.method().eq_ignore_ascii_case("OPTIONS") {
            return None;
        }
        let Some(origin) = self.allowed(event) else {
            return Some(HttpResponse::error(
                &crate::problem::ApiError::Forbidden(
                    "cross-origin requests are allowed from the configured site origins only"
                        .into(),
                ),
                None,
            ));
        };
        let mut r = HttpResponse::empty(204);
        allow(&mut r, origin);
        r.headers
            .insert("access-control-allow-methods".into(), METHODS.into());
        r.headers
            .insert("access-control-allow-headers".into(), HEADERS.into());
        r.headers
            .insert("access-control-max-age".into(), MAX_AGE_SECS.to_string());
        Some(r)
    }

    /// Lets an allowed origin's page read the response. Every response varies by `Origin`, so a
    /// cache never hands one site's answer to another.
    pub fn decorate(&self, event: &HttpEvent, response: &mut HttpResponse) {
        if self.origins.is_empty() {
            return;
        }
        response.headers.insert("vary".into(), "origin".into());
        if let Some(origin) = self.allowed(event) {
            allow(response, origin);
            response
                .headers
                .insert("access-control-expose-headers".into(), EXPOSED.into());
        }
    }
}

fn allow(r: &mut HttpResponse, origin: &str) {
    r.headers
        .insert("access-control-allow-origin".into(), origin.into());
    r.headers.insert("vary".into(), "origin".into());
}

/// An origin as browsers send it: `http(s)://host[:port]`, nothing after. `*` is refused: the
/// API answers customers' conversations, and any site must not read them.
fn parse_origin(origin: &str) -> Result<String, &'static str> {
    if origin == "*" {
        return Err("name the sites' origins; * would let any site call the API");
    }
    let url = url::Url::parse(origin).map_err(|_| "not a URL such as https://shop.example")?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("must be http(s)://host[:port]");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("an origin has no path: https://shop.example, not https://shop.example/help");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("an origin has no user name or password");
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(method: &str, origin: Option<&str>) -> HttpEvent {
        let mut e = HttpEvent::default();
        e.request_context.http.method = method.into();
        e.raw_path = "/v1/messages".into();
        if let Some(o) = origin {
            e.headers.insert("origin".into(), o.into());
        }
        e
    }

    fn cors(value: &str) -> Result<Cors, ConfigError> {
        let value = value.to_string();
        Cors::from_env(&Env(move |k| {
            (k == "ALLOWED_ORIGINS").then(|| value.clone())
        }))
    }

    #[test]
    fn origins_are_checked_and_normalised_at_init() {
        let c = cors(" https://Shop.example , http://127.0.0.1:4590").unwrap();
        assert_eq!(c.origins, ["https://shop.example", "http://127.0.0.1:4590"]);
        for bad in [
            "*",
            "shop.example",
            "https://shop.example/help",
            "ftp://x.example",
            "https://u:p@x.example",
        ] {
            assert!(cors(bad).is_err(), "{bad}");
        }
        assert_eq!(cors("").unwrap(), Cors::default());
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_is_answered_and_others_refused() {
        let c = cors("https://shop.example").unwrap();
        let ok = c
            .preflight(&event("OPTIONS", Some("https://shop.example")))
            .unwrap();
        assert_eq!(ok.status_code, 204);
        let h = |k: &str| ok.headers.get(k).map(String::as_str);
        assert_eq!(
            h("access-control-allow-origin"),
            Some("https://shop.example")
        );
        assert_eq!(h("access-control-allow-headers"), Some(HEADERS));
        assert_eq!(h("access-control-allow-credentials"), None);
        let refused = c
            .preflight(&event("OPTIONS", Some("https://evil.example")))
            .unwrap();
        assert_eq!(refused.status_code, 403);
        assert!(!refused.headers.contains_key("access-control-allow-origin"));
        assert!(c.preflight(&event("OPTIONS", None)).unwrap().status_code == 403);
        assert!(c
            .preflight(&event("POST", Some("https://shop.example")))
            .is_none());
    }

    #[test]
    fn responses_name_only_an_allowed_origin_and_always_vary_by_it() {
        let c = cors("https://shop.example").unwrap();
        let mut r = HttpResponse::empty(200);
        c.decorate(&event("GET", Some("https://shop.example")), &mut r);
        assert_eq!(
            r.headers
                .get("access-control-allow-origin")
                .map(String::as_str),
            Some("https://shop.example")
        );
        assert_eq!(
            r.headers
                .get("access-control-expose-headers")
                .map(String::as_str),
            Some("retry-after")
        );
        let mut other = HttpResponse::empty(200);
        c.decorate(&event("GET", Some("https://evil.example")), &mut other);
        assert!(!other.headers.contains_key("access-control-allow-origin"));
        assert_eq!(
            other.headers.get("vary").map(String::as_str),
            Some("origin")
        );
    }
}
