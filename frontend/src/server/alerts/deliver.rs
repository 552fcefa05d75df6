//! Sending one notification: an HTTP request ([`Channel::request`]) or an
//! email over SMTP (lettre). Bounded in time; an error says what went wrong
//! without the destination's secrets (a URL may carry a token: it is left out).

use std::time::Duration;

use super::channels::{Channel, Notice, Security, Target};

/// The longest any one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an error answer's body kept (it is shown to admins).
const ERROR_BODY_MAX: usize = 200;

pub struct Sender {
    http: reqwest::Client,
}

impl Sender {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            // A destination is what the admin typed: never somewhere a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dockward/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Sender { http }
    }

    /// Sends `n` through `c`: `Err` says why not (for the page, and retries).
    pub async fn send(&self, c: &Channel, n: &Notice) -> Result<(), String> {
        let now = super::super::store::now_s() as i64;
        match c.request(n, now) {
            Some(out) => {
                let method = reqwest::Method::from_bytes(out.method.as_bytes()).map_err(|e| e.to_string())?;
                let mut req = self.http.request(method, &out.url).body(out.body);
                for (k, v) in &out.headers {
                    req = req.header(*k, v);
                }
                let resp = req.send().await.map_err(|e| e.without_url().to_string())?;
                let status = resp.status();
                if status.is_success() {
                    return Ok(());
                }
                let body = resp.text().await.unwrap_or_default();
                let mut said: String = body.chars().filter(|c| !c.is_control()).take(ERROR_BODY_MAX).collect();
                if !said.is_empty() {
                    said = format!(": {said}");
                }
                Err(format!("{} answered {status}{said}", c.destination()))
            }
            None => tokio::time::timeout(SEND_TIMEOUT, email(c, n))
                .await
                .unwrap_or_else(|_| Err("the mail server did not answer in time".into())),
        }
    }
}

async fn email(c: &Channel, n: &Notice) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let Target::Email { host, port, security, username, password, from, to } = &c.target else {
        return Err("not an email channel".into());
    };
    let builder = match security {
        Security::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(|e| e.to_string())?,
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| e.to_string())?,
        Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
    };
    let mut builder = builder.port(*port).timeout(Some(SEND_TIMEOUT));
    if let (Some(u), Some(p)) = (username, password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    let mut m = Message::builder().from(from.parse().map_err(|e| format!("from: {e}"))?).subject(n.headline());
    for t in to {
        m = m.to(t.parse().map_err(|e| format!("to: {e}"))?);
    }
    let message = m.header(ContentType::TEXT_PLAIN).body(n.text()).map_err(|e| e.to_string())?;
    builder.build().send(message).await.map(|_| ()).map_err(|e| format!("{host}:{port}: {e}"))
}
