#!/bin/sh
# The sample app: prints a greeting assembled from what the buildpacks contributed.
echo "${GREETING:-Hello} from a Rust-built CNB image! (served by $(greet-name))"
