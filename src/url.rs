//! URLs as the worker meets them: already normalised by the runtime (a
//! request's URL) or checked once at configuration time, so they are split by
//! string slicing, without a URL parser (and its IDNA tables) in the module.
//! The bottom layer: it depends on nothing else in the crate.

/// An absolute `http(s)` URL split into its origin (`scheme://authority`) and
/// the rest (path and query), by string slicing: the runtime hands over
/// request URLs already normalised, so no URL parser (and its IDNA tables)
/// is needed on the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// `scheme://host[:port]`.
    pub origin: &'a str,
    /// The path, starting with `/`.
    pub path: &'a str,
    /// The query without `?`, when there is one.
    pub query: Option<&'a str>,
    /// Path and query as they follow the origin (`/a?b`).
    pub path_and_query: &'a str,
}

impl<'a> UrlParts<'a> {
    /// Splits a normalised absolute URL; `None` if it has no `scheme://`.
    ///
    /// ```
    /// use edge_session::url::UrlParts;
    /// let u = UrlParts::split("https://app.example:8443/a/b?x=1#frag").unwrap();
    /// assert_eq!((u.origin, u.path, u.query), ("https://app.example:8443", "/a/b", Some("x=1")));
    /// assert_eq!(u.path_and_query, "/a/b?x=1");
    /// ```
    pub fn split(url: &'a str) -> Option<UrlParts<'a>> {
        let url = url.split_once('#').map_or(url, |(u, _)| u);
        let after_scheme = url.find("://")? + 3;
        let authority_end = url[after_scheme..]
            .find(['/', '?'])
            .map_or(url.len(), |i| after_scheme + i);
        let origin = &url[..authority_end];
        let path_and_query = &url[authority_end..];
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        Some(UrlParts {
            origin,
            path: if path.is_empty() { "/" } else { path },
            query,
            path_and_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_path_and_query() {
        let u = UrlParts::split("http://127.0.0.1:8787").unwrap();
        assert_eq!(
            (u.origin, u.path, u.query, u.path_and_query),
            ("http://127.0.0.1:8787", "/", None, "")
        );
        let u = UrlParts::split("http://h/?").unwrap();
        assert_eq!((u.path, u.query), ("/", Some("")));
        let u = UrlParts::split("http://h?q=/x").unwrap();
        assert_eq!((u.origin, u.path, u.query), ("http://h", "/", Some("q=/x")));
        assert_eq!(UrlParts::split("/relative"), None);
    }
}
