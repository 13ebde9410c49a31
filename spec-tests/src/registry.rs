//! A local Distribution registry for the image phases' registry mode.
//!
//! Wraps `cnb_image::testkit::TestRegistry` (Debian's `docker-registry` on 127.0.0.1 and a free
//! port, stopped on drop). Only the fixture is borrowed from our crates: everything the suite
//! checks about images goes through skopeo, umoci and tar ([`crate::oci`]).

use std::path::Path;

use cnb_image::testkit::TestRegistry;

use crate::oci::{BaseImage, Image, skopeo};
use crate::{Run, Workspace};

/// A running registry; stopped when dropped.
pub struct Registry {
    inner: TestRegistry,
}

impl Default for Registry {
    fn default() -> Self {
        Self::start()
    }
}

impl Registry {
    /// Starts an anonymous plain-HTTP registry.
    pub fn start() -> Self {
        let inner = TestRegistry::start().unwrap_or_else(|e| {
            panic!("cannot start the test registry ({e}); apt-get install docker-registry")
        });
        Registry { inner }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.inner.host()
    }

    /// `127.0.0.1:<port>/<repo_and_tag>`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        self.inner.reference(repo_and_tag)
    }

    /// An image in this registry, for inspection.
    pub fn image(&self, repo_and_tag: &str) -> Image {
        Image::registry(&self.reference(repo_and_tag))
    }

    /// Lets a phase talk plain HTTP to this registry (`CNB_INSECURE_REGISTRIES`).
    pub fn allow(&self, run: Run) -> Run {
        run.env("CNB_INSECURE_REGISTRIES", self.host())
    }

    /// How many blob uploads the access log shows (a `PUT` finishing each one).
    pub fn blob_uploads(&self) -> usize {
        self.inner.count_requests("PUT", "/blobs/uploads/")
    }

    /// How many `PUT`s of the blob `digest` (`sha256:…`, the hex part is in the upload URL's
    /// `digest=` parameter) the access log shows.
    pub fn blob_uploads_of(&self, digest: &str) -> usize {
        let hex = digest.rsplit(':').next().unwrap_or(digest);
        self.inner.count_requests("PUT", hex)
    }

    /// How many cross-repository mounts of the blob `digest` the access log shows (the
    /// `POST` naming it in `mount=`).
    pub fn blob_mounts_of(&self, digest: &str) -> usize {
        let hex = digest.rsplit(':').next().unwrap_or(digest);
        self.inner.count_requests("POST", hex)
    }

    /// How many blob `GET`s of `digest` the lifecycle sent (access log lines with its
    /// user agent; skopeo's own reads in a test's setup do not count).
    pub fn lifecycle_blob_gets_of(&self, digest: &str) -> usize {
        let hex = digest.rsplit(':').next().unwrap_or(digest);
        self.lifecycle_requests("\"GET ", &format!("/blobs/sha256:{hex}"))
    }

    /// How many `GET`s and `HEAD`s of repository `repo` the lifecycle sent.
    pub fn lifecycle_reads_of_repo(&self, repo: &str) -> usize {
        let path = format!("/v2/{repo}/");
        self.lifecycle_requests("\"GET ", &path) + self.lifecycle_requests("\"HEAD ", &path)
    }

    fn lifecycle_requests(&self, method: &str, path_part: &str) -> usize {
        self.inner
            .log()
            .lines()
            .filter(|l| l.contains(method) && l.contains(path_part))
            .filter(|l| l.contains("cnb-lifecycle-rs/"))
            .count()
    }

    /// The registry's log (access log included), for failure messages.
    pub fn log(&self) -> String {
        self.inner.log()
    }

    /// Pushes the OCI layout image at `layout` to `<host>/<repo_and_tag>` with skopeo and
    /// returns it as a base image (`reference` = `<host>/<repo>@sha256:…`).
    pub fn push(&self, layout: &Path, repo_and_tag: &str) -> BaseImage {
        let image = self.reference(repo_and_tag);
        skopeo(&[
            "copy",
            "--insecure-policy",
            "--dest-tls-verify=false",
            &format!("oci:{}", layout.display()),
            &format!("docker://{image}"),
        ]);
        let pushed = Image::registry(&image);
        let digest = pushed.digest();
        let repo = image.rsplit_once(':').map(|(r, _)| r).unwrap_or(&image);
        BaseImage {
            image: image.clone(),
            reference: format!("{repo}@{digest}"),
            digest,
            diff_ids: pushed.diff_ids(),
            layout: None,
        }
    }

    /// Pushes the run-image fixture to `cnb/run:latest` and writes the `analyzed.toml` the
    /// analyzer would write for it into `ws`: what a registry export of a built app starts from.
    pub fn push_run_image_for(&self, ws: &Workspace) -> BaseImage {
        let run = self.push(crate::oci::run_image_layout(), "cnb/run:latest");
        ws.write("layers/analyzed.toml", run.analyzed_toml());
        run
    }
}
