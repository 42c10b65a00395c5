//! The admin page (CONTRACT.md section 6): plain HTML, JS and CSS compiled
//! into the binary, no build step. It holds no data: it asks for the token
//! (kept in `sessionStorage`) and reads everything through the API. Its form
//! is built from `GET /api/types`, the one definition of each type's keys.

use bytes::Bytes;
use http::{Response, StatusCode};

use super::text;
use crate::http::body::Body;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");

/// The page's file at `path`, or `None`.
pub fn asset(path: &str) -> Option<Response<Body>> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX),
        "/assets/app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/assets/app.css" => ("text/css; charset=utf-8", STYLE),
        _ => return None,
    };
    Some(text(StatusCode::OK, content_type, Bytes::from_static(body.as_bytes())))
}
