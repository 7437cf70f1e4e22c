//! Warnings a person must see: through `log` when a logger is enabled,
//! else on stderr (a newcomer often has no logger installed, and a silent
//! warning is no warning).

/// Emits `msg` as a warning: `log::warn!` if a logger is enabled
/// (`log::max_level()` is not `Off`), else one line on stderr.
pub(crate) fn warn(msg: std::fmt::Arguments<'_>) {
    if log::max_level() == log::LevelFilter::Off {
        eprintln!("{msg}");
    } else {
        log::warn!("{msg}");
    }
}
