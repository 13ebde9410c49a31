//! The OCI distribution-spec v1.1 referrers API, added by the test proxy
//! ([`crate::faultproxy::FaultProxy::with_referrers_api`]) in front of Debian's Distribution
//! 2.8, which predates the API.
//!
//! Why a stand-in: no registry packaged in Debian has the API (zot and Distribution 3 are not
//! packaged), and the harness builds nothing from Go sources. The manifests and blobs are
//! still stored and served by the real registry; only the listing is the proxy's, kept the
//! way the distribution spec (v1.1, "Pushing Manifests with Subject" and "Listing Referrers")
//! asks of a registry:
//! - a manifest `PUT` whose body has a `subject` is forwarded; once the registry has stored it
//!   (2xx), a descriptor of it is recorded under the subject's digest and the response gets
//!   the `OCI-Subject: <subject digest>` header;
//! - `GET /v2/<name>/referrers/<digest>` answers 200 with an image index of those descriptors
//!   (`mediaType`, `digest`, `size`, `artifactType` (the manifest's, else its config's media
//!   type), `annotations`), an empty index for a digest nothing refers to; with
//!   `?artifactType=<type>` only that type, and the `OCI-Filters-Applied: artifactType` header.

use std::collections::BTreeMap;

use serde_json::{Value, json};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The descriptors recorded so far, by repository and subject digest.
#[derive(Debug, Default)]
pub struct Referrers {
    by_subject: BTreeMap<(String, String), Vec<Value>>,
}

/// A `GET /v2/<name>/referrers/<digest>` answer.
pub struct Listing {
    /// The image index.
    pub body: Vec<u8>,
    /// Whether an `artifactType` filter was applied.
    pub filtered: bool,
}

impl Referrers {
    /// Records the manifest `body` just stored at `PUT target` when it has a subject; returns
    /// the subject's digest (for the `OCI-Subject` header).
    pub fn record(
        &mut self,
        target: &str,
        body: &[u8],
        content_type: Option<&str>,
    ) -> Option<String> {
        let repo = manifest_repo(target)?;
        let manifest: Value = serde_json::from_slice(body).ok()?;
        let subject = manifest["subject"]["digest"].as_str()?.to_owned();
        let digest = cnb_image::digest::sha256(body).to_string();
        let media_type = manifest["mediaType"]
            .as_str()
            .or(content_type)
            .unwrap_or_default();
        let artifact_type = manifest["artifactType"]
            .as_str()
            .or(manifest["config"]["mediaType"].as_str());
        let mut descriptor = json!({"mediaType": media_type, "digest": digest, "size": body.len()});
        if let Some(t) = artifact_type {
            descriptor["artifactType"] = json!(t);
        }
        if let Some(a) = manifest.get("annotations").filter(|a| a.is_object()) {
            descriptor["annotations"] = a.clone();
        }
        let entries = self.by_subject.entry((repo, subject.clone())).or_default();
        match entries
            .iter_mut()
            .find(|d| d["digest"] == descriptor["digest"])
        {
            Some(known) => *known = descriptor,
            None => entries.push(descriptor),
        }
        Some(subject)
    }

    /// The answer to `GET target` when it is a referrers request.
    pub fn listing(&self, method: &str, target: &str) -> Option<Listing> {
        if method != "GET" && method != "HEAD" {
            return None;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let rest = path.strip_prefix("/v2/")?;
        let (repo, digest) = rest.rsplit_once("/referrers/")?;
        let wanted = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("artifactType="))
            .map(|t| t.replace("%2B", "+").replace("%2F", "/"));
        let manifests: Vec<Value> = self
            .by_subject
            .get(&(repo.to_owned(), digest.to_owned()))
            .into_iter()
            .flatten()
            .filter(|d| wanted.as_deref().is_none_or(|t| d["artifactType"] == t))
            .cloned()
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
        Some(Listing {
            body: serde_json::to_vec(&index).unwrap_or_default(),
            filtered: wanted.is_some(),
        })
    }
}

/// The repository of `/v2/<name>/manifests/<reference>`.
fn manifest_repo(target: &str) -> Option<String> {
    let path = target.split('?').next()?;
    let (repo, reference) = path.strip_prefix("/v2/")?.rsplit_once("/manifests/")?;
    (!repo.is_empty() && !reference.is_empty()).then(|| repo.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_subjects_and_lists_them_filtered() {
        let mut r = Referrers::default();
        let artifact = br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"a/b+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"},"subject":{"digest":"sha256:aa"},"annotations":{"k":"v"}}"#;
        let sig = br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"sig/x"},"subject":{"digest":"sha256:aa"}}"#;
        let plain = br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"c"}}"#;
        assert_eq!(
            r.record("/v2/acme/app/manifests/sha256:11", artifact, None)
                .as_deref(),
            Some("sha256:aa")
        );
        assert_eq!(
            r.record("/v2/acme/app/manifests/sha256:22", sig, None)
                .as_deref(),
            Some("sha256:aa")
        );
        assert_eq!(r.record("/v2/acme/app/manifests/v1", plain, None), None);
        // Pushed again: listed once.
        r.record("/v2/acme/app/manifests/sha256:11", artifact, None);
        let all: Value = serde_json::from_slice(
            &r.listing("GET", "/v2/acme/app/referrers/sha256:aa")
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(all["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(all["manifests"][0]["annotations"]["k"], "v");
        assert_eq!(all["manifests"][1]["artifactType"], "sig/x");
        let one = r
            .listing(
                "GET",
                "/v2/acme/app/referrers/sha256:aa?artifactType=a%2Fb%2Bjson",
            )
            .unwrap();
        assert!(one.filtered);
        let one: Value = serde_json::from_slice(&one.body).unwrap();
        assert_eq!(one["manifests"].as_array().unwrap().len(), 1);
        let none: Value = serde_json::from_slice(
            &r.listing("GET", "/v2/other/referrers/sha256:aa")
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(none["manifests"], json!([]));
        assert!(r.listing("GET", "/v2/acme/app/manifests/v1").is_none());
    }
}
