//! The AWS SDK's HTTP client: the same reqwest stack the connectors use (rustls on ring, the
//! Mozilla roots compiled in), behind the SDK's `HttpClient` port.
//!
//! The SDK's own client (`aws-smithy-http-client`) reads and parses the platform's certificate
//! store the first time any client is built (`aws_config` builds one at load, for STS), a few
//! milliseconds of every cold start, and brings a second HTTP and TLS stack into each binary.
//! Every request and answer of the services used here (DynamoDB, SQS, SSM, Secrets Manager,
//! SES) is a small JSON or query document, so bodies are sent and read whole.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// The SDK's connect and read timeouts, which a connector is built with.
type Timeouts = (Option<Duration>, Option<Duration>);

/// One reqwest client per distinct timeout settings the SDK asks for (in practice one: every
/// client here uses the defaults), built on first use and shared by every SDK client after.
#[derive(Debug, Default)]
pub struct ReqwestHttpClient {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl ReqwestHttpClient {
    pub fn shared() -> SharedHttpClient {
        SharedHttpClient::new(Self::default())
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        connectors
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(Connector::new(key.0, key.1)))
            .clone()
    }
}

#[derive(Debug, Clone)]
struct Connector {
    client: reqwest::Client,
}

impl Connector {
    fn new(connect_timeout: Option<Duration>, read_timeout: Option<Duration>) -> Self {
        let mut builder = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(t) = connect_timeout {
            builder = builder.connect_timeout(t);
        }
        if let Some(t) = read_timeout {
            builder = builder.read_timeout(t);
        }
        let client = builder
            .build()
            .expect("a client with only timeouts always builds");
        Self { client }
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        HttpConnectorFuture::new(send(self.client.clone(), request))
    }
}

async fn send(
    client: reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let Some(body) = request.body().bytes().map(<[u8]>::to_vec) else {
        return Err(ConnectorError::user(
            "a streaming request body (only whole bodies are sent)".into(),
        ));
    };
    let method = reqwest::Method::from_bytes(request.method().as_bytes())
        .map_err(|e| ConnectorError::user(e.into()))?;
    let mut outgoing = client.request(method, request.uri()).body(body);
    for (name, value) in request.headers() {
        outgoing = outgoing.header(name, value);
    }
    let answer = outgoing.send().await.map_err(classify)?;
    let status = StatusCode::try_from(answer.status().as_u16())
        .map_err(|e| ConnectorError::other(e.into(), None))?;
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.map_err(classify)?;
    let mut response = HttpResponse::new(status, SdkBody::from(bytes));
    for (name, value) in &headers {
        // Header values the SDK cannot hold as text (never sent by AWS) are left out.
        if let Ok(value) = value.to_str() {
            response
                .headers_mut()
                .append(name.as_str().to_owned(), value.to_owned());
        }
    }
    Ok(response)
}

/// The SDK's retry policy reads these: timeouts and I/O errors are retried, a request that
/// could not be built is not. Everything else reqwest reports on the way (a connection refused
/// or reset, an answer cut off: reading a body fails as a "decode" error) is the network's.
fn classify(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_builder() {
        ConnectorError::user(e.into())
    } else {
        ConnectorError::io(e.into())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A loopback server that reads one request and answers with `answer` (then closes).
    fn serve_once(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf);
            let _ = socket.write_all(answer);
        });
        url
    }

    fn connector(read_timeout: Option<Duration>) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector::new(Some(Duration::from_secs(2)), read_timeout))
    }

    fn request(url: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from("{}"));
        r.set_uri(url).unwrap();
        r.headers_mut()
            .insert("x-amz-target", "DynamoDB_20120810.Query");
        r
    }

    #[tokio::test]
    async fn an_answer_comes_back_whole_with_its_status_and_headers() {
        let url = serve_once(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: r1\r\ncontent-length: 2\r\n\r\n{}",
        );
        let answer = connector(None).call(request(&url)).await.unwrap();
        assert_eq!(answer.status().as_u16(), 400);
        assert_eq!(answer.headers().get("x-amzn-requestid"), Some("r1"));
        assert_eq!(answer.body().bytes(), Some(&b"{}"[..]));
    }

    #[tokio::test]
    async fn an_answer_cut_off_is_an_io_error_the_sdk_retries() {
        let url = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"Items\":");
        let e = connector(None).call(request(&url)).await.unwrap_err();
        assert!(e.is_io(), "{e:?}");
    }

    #[tokio::test]
    async fn nobody_listening_is_an_io_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/");
        let e = connector(None).call(request(&url)).await.unwrap_err();
        assert!(e.is_io(), "{e:?}");
    }

    #[tokio::test]
    async fn no_answer_within_the_read_timeout_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        // Accepts and holds the connection without answering until the test ends.
        let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let e = connector(Some(Duration::from_millis(200)))
            .call(request(&url))
            .await
            .unwrap_err();
        assert!(e.is_timeout(), "{e:?}");
        drop(held);
    }
}
