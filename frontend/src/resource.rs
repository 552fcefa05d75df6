//! Page data resources, all decoded by one JSON reader.
//!
//! A resource is decoded twice in the browser's life: from the server's
//! render (a string in the page) and from a server function's answer
//! (bytes). Leptos' default codec reads the first with `from_str` and
//! server_fn the second with `from_slice`, which links two copies of every
//! type's deserializer into the wasm bundle. This codec reads both with
//! `from_slice`: one copy.

use leptos::prelude::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub struct Json;

impl<T: Serialize> codee::Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, Self::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> codee::Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, Self::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// `Resource::new`, with [`Json`].
#[track_caller]
pub fn resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, Json>
where
    S: Send + Sync + Clone + PartialEq + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use codee::{Decoder, Encoder};

    #[test]
    fn round_trips() {
        let v = vec![("a".to_string(), 1u32)];
        let s = <super::Json as Encoder<Vec<(String, u32)>>>::encode(&v).unwrap();
        let back: Vec<(String, u32)> = <super::Json as Decoder<_>>::decode(s.as_str()).unwrap();
        assert_eq!(back, v);
        assert!(<super::Json as Decoder<Vec<u32>>>::decode("nope").is_err());
    }
}
