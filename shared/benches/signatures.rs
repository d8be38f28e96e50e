//! Webhook verification per request vs raw HMAC-SHA256 over the same bytes, at 1, 4 and 64 KiB.
//!
//!   cargo bench -p switchboard --bench signatures
//!
//! The target is verification at ≥ 90% of raw HMAC throughput: parsing headers and comparing
//! digests is a fixed cost, and the body is fed to the MAC in place. Figures: docs/benchmarks.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard::http_event::HttpEvent;
use switchboard::signatures::{sign, verify, Scheme, SigningKey};

/// A function-URL request as the webhook function sees it: the vendor's headers among the
/// usual others, names lower-cased by AWS.
fn request(signed: &[(&'static str, String)]) -> HttpEvent {
    let mut headers: std::collections::HashMap<String, String> = [
        ("content-type", "application/json"),
        (
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        ),
        ("accept", "*/*; q=0.5, application/xml"),
        ("cache-control", "no-cache"),
        ("host", "abcdefghij.lambda-url.us-east-1.on.aws"),
        ("x-amzn-tls-version", "TLSv1.3"),
        (
            "x-amzn-trace-id",
            "Root=1-6b06cc33-62a470bb132d5371813b8e62",
        ),
        ("x-forwarded-for", "54.187.174.169"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
        ("content-length", "1024"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    headers.extend(signed.iter().map(|(k, v)| (k.to_string(), v.clone())));
    HttpEvent {
        headers,
        ..HttpEvent::default()
    }
}

const SCHEMES: [(Scheme, &str); 5] = [
    (
        Scheme::StandardWebhooks,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    (Scheme::Stripe, "whsec_bench_stripe_signing_secret"),
    (Scheme::Github, "It's a Secret to Everybody"),
    (Scheme::Shopify, "bench-shopify-app-secret"),
    (Scheme::Slack, "8f742231b10e8888abcd99yyyzzz85a5"),
];

fn bench(c: &mut Criterion) {
    const TS: i64 = 1_795_600_000;
    for size in [1024usize, 4 * 1024, 64 * 1024] {
        let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let mut group = c.benchmark_group(format!("verify/{}KiB", size / 1024));
        group.throughput(Throughput::Bytes(size as u64));
        group.measurement_time(Duration::from_secs(3));
        group.warm_up_time(Duration::from_secs(1));
        group.sample_size(30);

        // The baseline: one HMAC-SHA256 over the body from a state already keyed, as the
        // verifier keeps its keys. The second line adds the key setup a naive verifier pays.
        let keyed = Hmac::<Sha256>::new_from_slice(b"whsec_bench_stripe_signing_secret")
            .expect("any key length");
        group.bench_function(BenchmarkId::from_parameter("raw-hmac-sha256"), |b| {
            b.iter(|| {
                let mut mac = black_box(&keyed).clone();
                mac.update(black_box(&body));
                black_box(mac.finalize().into_bytes())
            })
        });
        group.bench_function(
            BenchmarkId::from_parameter("raw-hmac-sha256+key-setup"),
            |b| {
                b.iter(|| {
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(b"whsec_bench_stripe_signing_secret")
                            .expect("any key length");
                    mac.update(black_box(&body));
                    black_box(mac.finalize().into_bytes())
                })
            },
        );
        for (scheme, secret) in SCHEMES {
            let key = SigningKey::new(scheme, secret).expect("valid secret");
            let keys = vec![key.clone()];
            let event = request(&sign(
                scheme,
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                TS,
                &body,
            ));
            group.bench_function(BenchmarkId::from_parameter(format!("{scheme:?}")), |b| {
                b.iter(|| {
                    verify(
                        scheme,
                        black_box(&keys),
                        black_box(&event),
                        black_box(&body),
                        TS,
                        300,
                    )
                    .expect("valid signature")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
