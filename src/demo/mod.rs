//! The page at `/`: with the demo configuration (`config/demo.toml`, a
//! `local` integration serving bucket `demo`) a small gallery of the sample
//! media in `examples/media/demo/`, loaded through mediagate itself, so a
//! newcomer sees images and a seekable video within a minute.
//!
//! Without a local `demo` bucket the page only explains the request forms.
//! With `[auth] mode = "signed-url"` it shows no gallery either: the page
//! is public, and handing out signed URLs to anyone who opens it would make
//! the bucket public too. The page never touches storage.

use http::{HeaderValue, Response, StatusCode, header};

use crate::auth::Auth;
use crate::http::body::{self, Body};
use crate::integration::Registry;
use crate::locator::{Locator, Scheme};

const TEMPLATE: &str = include_str!("index.html");

/// The bucket of the demo `local` integration.
pub const BUCKET: &str = "demo";

/// What the gallery shows: key, kind, caption.
const ITEMS: [(&str, Kind, &str); 4] = [
    ("testsrc.png", Kind::Image, "PNG test card"),
    ("gradient.jpg", Kind::Image, "JPEG gradient"),
    ("clip.mp4", Kind::Video, "H.264 + AAC, index first (faststart): plays at once, seeks with Range"),
    ("clip-tail.mp4", Kind::Video, "the same clip, index at the end: the player reads the tail first"),
];

#[derive(Clone, Copy)]
enum Kind {
    Image,
    Video,
}

/// The page for this configuration.
pub fn page(registry: &Registry, auth: &Auth) -> Response<Body> {
    let content = if auth.is_signed() {
        "<p class=\"note\">This mediagate checks signed URLs (<code>[auth] mode = \"signed-url\"</code>), so the demo \
         gallery is off: this page is public and would otherwise hand out working URLs. Run \
         <code>cargo run -- serve --config config/demo.toml</code> to see the gallery.</p>"
            .to_owned()
    } else if has_demo_bucket(registry) {
        gallery()
    } else {
        "<p class=\"note\">No demo gallery: this configuration has no <code>local</code> integration serving bucket \
         <code>demo</code>. <code>cargo run -- serve --config config/demo.toml</code> starts one.</p>"
            .to_owned()
    };
    let html = TEMPLATE.replace("{{content}}", &content);
    let mut resp = Response::new(body::full(html));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// Whether `local://demo/...` reaches a `local` integration.
fn has_demo_bucket(registry: &Registry) -> bool {
    let probe = Locator { scheme: Scheme::Local, account: None, bucket: BUCKET.into(), key: "clip.mp4".into() };
    registry.resolve(&probe).is_ok_and(|i| i.kind_name() == "local")
}

fn gallery() -> String {
    let mut out = String::from(
        "<p>The files of <code>examples/media/demo/</code>, each loaded from this mediagate through the \
         <code>local</code> integration <code>demo</code>. Seek in a video: a jump past what is buffered is a \
         <code>Range</code> request, answered with <code>206 Partial Content</code>.</p>\n<div class=\"grid\">\n",
    );
    for (key, kind, what) in ITEMS {
        let loc = Locator { scheme: Scheme::Local, account: None, bucket: BUCKET.into(), key: key.into() };
        let url = loc.path_form();
        let element = match kind {
            Kind::Image => format!("<img data-media src=\"{url}\" alt=\"{key}\">"),
            Kind::Video => {
                format!(
                    "<video data-media src=\"{url}#t=0.1\" controls muted playsinline preload=\"metadata\"></video>"
                )
            }
        };
        out.push_str(&format!(
            "<figure>{element}<figcaption><a href=\"{url}\"><code>{url}</code></a> \
             <span class=\"what\">{what}</span><div class=\"status\"></div></figcaption></figure>\n"
        ));
    }
    out.push_str("</div>\n");
    out
}
