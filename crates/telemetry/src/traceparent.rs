//! The W3C Trace Context `traceparent` header (`version-traceid-parentid-flags`), as a platform
//! passes it in `CNB_OTEL_TRACEPARENT`.

use std::fmt;
use std::str::FromStr;

use crate::ids::{SpanId, TraceId, parse_hex};

/// A parsed `traceparent`: the trace to join and the span to hang the phase's root span on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The platform's trace.
    pub trace_id: TraceId,
    /// The platform's span, the parent of each phase root span.
    pub parent_id: SpanId,
    /// The trace flags (bit 0: sampled). Kept for the record; the file export ignores
    /// sampling: a platform that opted in wants the file.
    pub flags: u8,
}

/// Why a `traceparent` was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid traceparent '{value}': {reason}")]
pub struct InvalidTraceParent {
    value: String,
    reason: &'static str,
}

impl FromStr for TraceParent {
    type Err = InvalidTraceParent;

    /// W3C rules: version `00` has exactly four fields; a higher version may append fields
    /// after a `-`; version `ff`, uppercase hex and all-zero ids are invalid.
    fn from_str(value: &str) -> Result<TraceParent, InvalidTraceParent> {
        let fail = |reason| InvalidTraceParent {
            value: value.chars().take(80).collect(),
            reason,
        };
        let text = value.trim();
        let mut fields = text.splitn(5, '-');
        let version = fields
            .next()
            .and_then(parse_hex::<1>)
            .ok_or_else(|| fail("bad version"))?;
        if version[0] == 0xff {
            return Err(fail("version ff is invalid"));
        }
        let trace = fields
            .next()
            .and_then(parse_hex::<16>)
            .ok_or_else(|| fail("bad trace-id"))?;
        let parent = fields
            .next()
            .and_then(parse_hex::<8>)
            .ok_or_else(|| fail("bad parent-id"))?;
        let flags = fields
            .next()
            .and_then(parse_hex::<1>)
            .ok_or_else(|| fail("bad trace-flags"))?;
        if version[0] == 0 && fields.next().is_some() {
            return Err(fail("version 00 has exactly four fields"));
        }
        if trace == [0; 16] || parent == [0; 8] {
            return Err(fail("all-zero id"));
        }
        Ok(TraceParent {
            trace_id: TraceId(trace),
            parent_id: SpanId(parent),
            flags: flags[0],
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn parses_the_w3c_example() {
        let tp: TraceParent = VALID.parse().expect("valid");
        assert_eq!(tp.trace_id.to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(tp.parent_id.to_string(), "b7ad6b7169203331");
        assert_eq!(tp.flags, 1);
        assert_eq!(tp.to_string(), VALID);
    }

    #[test]
    fn future_versions_may_append_fields() {
        let tp: TraceParent = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra"
            .parse()
            .expect("future version");
        assert_eq!(tp.flags, 0);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "garbage",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad:?} was accepted");
        }
    }
}
