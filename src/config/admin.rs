//! `[admin]`: the admin listener (CONTRACT.md section 6).

use std::net::SocketAddr;

use crate::schema::values::{as_key_secret, as_socket_addr};
use crate::schema::{Ctx, Section};
use crate::secret::Secret;

/// `[admin]`; absent section: no admin listener.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// `listen`, default `127.0.0.1:9091`.
    pub listen: SocketAddr,
    /// `token`: every route but `/`, `/assets/*`, `/healthz` and `/readyz`
    /// needs `Authorization: Bearer <token>`. Required unless `listen` is a
    /// loopback address.
    pub token: Option<Secret>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: SocketAddr::from(([127, 0, 0, 1], 9091)), token: None }
    }
}

/// `[admin]`: `listen`, `token`.
pub fn admin(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> AdminConfig {
    let d = AdminConfig::default();
    let listen = t.get(cx, "listen", as_socket_addr).unwrap_or(d.listen);
    let token = t.get(cx, "token", as_key_secret);
    if token.is_none() && !t.has("token") && !listen.ip().is_loopback() {
        let msg = format!(
            "the admin listener on {listen} is reachable beyond loopback and has no token: \
             set token = \"${{MEDIAGATE_ADMIN_TOKEN}}\" or listen on 127.0.0.1"
        );
        t.report_key(cx, "listen", msg);
    }
    t.finish(cx, "");
    AdminConfig { listen, token }
}
