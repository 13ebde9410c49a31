//! Log output as the reference prints it ([CMN-010], [CMN-011]): info and debug lines plain on
//! stdout, warnings as `Warning: …` and errors as `ERROR: …` on stderr, filtered by
//! `-log-level`. Library code logs through `tracing`; this module installs the subscriber.

use std::fmt;
use std::io::{self, Write};

use cnb_platform_api::inputs::LogLevel;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

struct PlainFormat;

impl<S, N> FormatEvent<S, N> for PlainFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        match *event.metadata().level() {
            Level::ERROR => write!(writer, "ERROR: ")?,
            Level::WARN => write!(writer, "Warning: ")?,
            _ => {}
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sends warnings and errors to stderr, everything else to stdout.
struct SplitWriter;

enum Out {
    Stdout(io::Stdout),
    Stderr(io::Stderr),
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::Stdout(s) => s.write(buf),
            Out::Stderr(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Stdout(s) => s.flush(),
            Out::Stderr(s) => s.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for SplitWriter {
    type Writer = Out;
    fn make_writer(&'a self) -> Out {
        Out::Stdout(io::stdout())
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Out {
        if *meta.level() <= Level::WARN {
            Out::Stderr(io::stderr())
        } else {
            Out::Stdout(io::stdout())
        }
    }
}

fn max_level(level: LogLevel) -> Level {
    match level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warn => Level::WARN,
        LogLevel::Error => Level::ERROR,
    }
}

/// Installs the process-wide subscriber; later calls do nothing.
pub fn init(level: LogLevel) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(max_level(level))
        .event_format(PlainFormat)
        .with_writer(SplitWriter)
        .try_init();
}
