//! Engine configuration: `cachescope.toml` (the runbook's keys under `[feature_store]`),
//! environment overrides, defaults that work out of the box, and validation that names the
//! offending key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::features::Params;

/// Environment variable the runbook uses to override retention.
pub const RETENTION_ENV: &str = "FEATURE_CACHE_RETENTION_DAYS";
/// Environment variable naming the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "CACHESCOPE_CONFIG";

/// A configuration that was refused: which key, where it came from, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("invalid value for `{key}` (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
    #[error("cannot determine the home directory for the default cache_dir; set `cache_dir` in the configuration or CACHESCOPE_CACHE_DIR")]
    NoHome,
}

/// The engine's configuration, after defaults, file and environment were applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Directory holding the `*.parquet.zst` cache files.
    pub cache_dir: PathBuf,
    /// The DuckDB manifest (default `<cache_dir>/manifest.duckdb`).
    pub manifest_path: PathBuf,
    /// ZSTD level of cache files, 1..=22.
    pub compression_level: i32,
    /// Capacity of the cache in GB (10^9 bytes).
    pub max_cache_size_gb: f64,
    /// Eviction starts when usage passes this share of capacity.
    pub cleanup_threshold: f64,
    /// Eviction stops when usage is at or below this share of capacity.
    pub eviction_target: f64,
    /// Files older than this (by creation time) are removed by `cleanup()`.
    pub retention_days: f64,
    /// Memory budget of one feature computation, in MB (10^6 bytes).
    pub memory_limit_mb: f64,
    /// Manifest changes are written in batches of at most this many entries...
    pub manifest_flush_every: usize,
    /// ...or at least this often (seconds of engine clock), whichever comes first.
    pub manifest_flush_interval_s: f64,
    /// How often (engine clock) the engine checks whether another process holds the manifest.
    pub manifest_probe_interval_s: f64,
    /// Per-feature-set parameters overriding the built-in defaults.
    pub feature_sets: BTreeMap<String, Params>,
}

impl Config {
    /// Defaults, with the cache in `cache_dir` (the manifest inside it).
    pub fn with_cache_dir(cache_dir: PathBuf) -> Config {
        Config {
            manifest_path: cache_dir.join("manifest.duckdb"),
            cache_dir,
            compression_level: 3,
            max_cache_size_gb: 50.0,
            cleanup_threshold: 0.9,
            eviction_target: 0.8,
            retention_days: 7.0,
            memory_limit_mb: 2048.0,
            manifest_flush_every: 2000,
            manifest_flush_interval_s: 30.0,
            manifest_probe_interval_s: 1.0,
            feature_sets: BTreeMap::new(),
        }
    }

    /// Capacity in bytes.
    pub fn max_cache_bytes(&self) -> u64 {
        (self.max_cache_size_gb * 1e9) as u64
    }

    /// Loads the configuration: defaults, then `path` (or `$CACHESCOPE_CONFIG`, or
    /// `./cachescope.toml` when it exists), then the environment, then validation.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let explicit = path
            .map(Path::to_path_buf)
            .or_else(|| env.get(CONFIG_ENV).map(PathBuf::from));
        let file = match explicit {
            Some(p) => Some(p),
            None => {
                let local = PathBuf::from("cachescope.toml");
                local.exists().then_some(local)
            }
        };
        let home = env.get("HOME").map(PathBuf::from);
        let text = match &file {
            Some(p) => Some(std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.clone(),
                source,
            })?),
            None => None,
        };
        Config::from_parts(file.as_deref(), text.as_deref(), &env, home.as_deref())
    }

    /// Pure core of [`Config::load`]: builds a configuration from the file text (if any),
    /// an environment map and the home directory.
    pub fn from_parts(
        path: Option<&Path>,
        text: Option<&str>,
        env: &BTreeMap<String, String>,
        home: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let origin_file = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".into());
        let file: FileConfig = match text {
            Some(t) => toml::from_str(t).map_err(|source| ConfigError::Parse {
                path: path.map(Path::to_path_buf).unwrap_or_default(),
                source,
            })?,
            None => FileConfig::default(),
        };
        let fs = file.feature_store.unwrap_or_default();
        let base = path.and_then(Path::parent).unwrap_or(Path::new(""));

        let mut origins: BTreeMap<&'static str, String> = BTreeMap::new();
        let cache_dir = match (&fs.cache_dir, env.get("CACHESCOPE_CACHE_DIR")) {
            (_, Some(v)) => {
                origins.insert("cache_dir", "CACHESCOPE_CACHE_DIR".into());
                expand(v, home, Path::new(""))?
            }
            (Some(v), None) => {
                origins.insert("cache_dir", origin_file.clone());
                expand(v, home, base)?
            }
            (None, None) => home.ok_or(ConfigError::NoHome)?.join(".feature_cache"),
        };
        let mut cfg = Config::with_cache_dir(cache_dir);
        if let Some(v) = &fs.manifest_path {
            cfg.manifest_path = expand(v, home, base)?;
        }
        if let Some(v) = env.get("CACHESCOPE_MANIFEST_PATH") {
            cfg.manifest_path = expand(v, home, Path::new(""))?;
        }
        macro_rules! take {
            ($field:ident, $env:literal) => {
                if let Some(v) = fs.$field {
                    cfg.$field = v;
                    origins.insert(stringify!($field), origin_file.clone());
                }
                if let Some(raw) = env.get($env) {
                    cfg.$field = raw.trim().parse().map_err(|_| ConfigError::Invalid {
                        key: stringify!($field).into(),
                        origin: format!("environment variable {}", $env),
                        message: format!("`{raw}` is not a number"),
                    })?;
                    origins.insert(stringify!($field), format!("environment variable {}", $env));
                }
            };
        }
        take!(compression_level, "CACHESCOPE_COMPRESSION_LEVEL");
        take!(max_cache_size_gb, "CACHESCOPE_MAX_CACHE_SIZE_GB");
        take!(cleanup_threshold, "CACHESCOPE_CLEANUP_THRESHOLD");
        take!(eviction_target, "CACHESCOPE_EVICTION_TARGET");
        take!(retention_days, "FEATURE_CACHE_RETENTION_DAYS");
        take!(memory_limit_mb, "CACHESCOPE_MEMORY_LIMIT_MB");
        take!(manifest_flush_every, "CACHESCOPE_MANIFEST_FLUSH_EVERY");
        take!(manifest_flush_interval_s, "CACHESCOPE_MANIFEST_FLUSH_INTERVAL_S");
        take!(manifest_probe_interval_s, "CACHESCOPE_MANIFEST_PROBE_INTERVAL_S");
        cfg.feature_sets = file.feature_sets;

        let origin = |k: &str| origins.get(k).cloned().unwrap_or_else(|| "defaults".into());
        cfg.validate_with(origin)?;
        Ok(cfg)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with(|_| "configuration".into())
    }

    fn validate_with(&self, origin: impl Fn(&str) -> String) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            key: key.into(),
            origin: origin(key),
            message,
        };
        if !(1..=22).contains(&self.compression_level) {
            return Err(bad(
                "compression_level",
                format!("{} is outside ZSTD's levels 1..=22", self.compression_level),
            ));
        }
        if !(self.max_cache_size_gb.is_finite() && self.max_cache_size_gb > 0.0) {
            return Err(bad(
                "max_cache_size_gb",
                format!("{} must be a positive number of GB", self.max_cache_size_gb),
            ));
        }
        if !(self.cleanup_threshold > 0.0 && self.cleanup_threshold <= 1.0) {
            return Err(bad(
                "cleanup_threshold",
                format!("{} must be in (0, 1]", self.cleanup_threshold),
            ));
        }
        if !(self.eviction_target > 0.0 && self.eviction_target < self.cleanup_threshold) {
            return Err(bad(
                "eviction_target",
                format!(
                    "{} must be in (0, cleanup_threshold = {})",
                    self.eviction_target, self.cleanup_threshold
                ),
            ));
        }
        if !(self.retention_days.is_finite() && self.retention_days > 0.0) {
            return Err(bad(
                "retention_days",
                format!("{} must be a positive number of days", self.retention_days),
            ));
        }
        if !(self.memory_limit_mb.is_finite() && self.memory_limit_mb > 0.0) {
            return Err(bad(
                "memory_limit_mb",
                format!("{} must be a positive number of MB", self.memory_limit_mb),
            ));
        }
        if self.manifest_flush_every == 0 {
            return Err(bad("manifest_flush_every", "must be at least 1".into()));
        }
        for (key, v) in [
            ("manifest_flush_interval_s", self.manifest_flush_interval_s),
            ("manifest_probe_interval_s", self.manifest_probe_interval_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(key, format!("{v} must be a non-negative number of seconds")));
            }
        }
        if self.manifest_path.as_os_str().is_empty() {
            return Err(bad("manifest_path", "must not be empty".into()));
        }
        Ok(())
    }
}

fn expand(v: &str, home: Option<&Path>, base: &Path) -> Result<PathBuf, ConfigError> {
    let p = if let Some(rest) = v.strip_prefix("~/") {
        home.ok_or(ConfigError::NoHome)?.join(rest)
    } else if v == "~" {
        home.ok_or(ConfigError::NoHome)?.to_path_buf()
    } else {
        PathBuf::from(v)
    };
    Ok(if p.is_relative() { base.join(p) } else { p })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    feature_store: Option<FeatureStoreSection>,
    #[serde(default)]
    feature_sets: BTreeMap<String, Params>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureStoreSection {
    cache_dir: Option<String>,
    manifest_path: Option<String>,
    compression_level: Option<i32>,
    max_cache_size_gb: Option<f64>,
    cleanup_threshold: Option<f64>,
    eviction_target: Option<f64>,
    retention_days: Option<f64>,
    memory_limit_mb: Option<f64>,
    manifest_flush_every: Option<usize>,
    manifest_flush_interval_s: Option<f64>,
    manifest_probe_interval_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_parts(
            Some(Path::new("/etc/cachescope.toml")),
            Some(text),
            &env,
            Some(Path::new("/home/u")),
        )
    }

    #[test]
    fn defaults_put_the_cache_under_home() {
        let c = Config::from_parts(None, None, &BTreeMap::new(), Some(Path::new("/home/u"))).unwrap();
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/.feature_cache"));
        assert_eq!(c.manifest_path, PathBuf::from("/home/u/.feature_cache/manifest.duckdb"));
        assert_eq!(c.compression_level, 3);
        assert_eq!(c.retention_days, 7.0);
    }

    #[test]
    fn file_values_and_env_overrides_apply() {
        let c = parts(
            "[feature_store]\ncache_dir = \"~/fc\"\ncompression_level = 1\nmax_cache_size_gb = 100\ncleanup_threshold = 0.95\nretention_days = 7\n[feature_sets.volatility]\nwindow = 30\n",
            &[("FEATURE_CACHE_RETENTION_DAYS", "14")],
        )
        .unwrap();
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/fc"));
        assert_eq!(c.compression_level, 1);
        assert_eq!(c.max_cache_size_gb, 100.0);
        assert_eq!(c.cleanup_threshold, 0.95);
        assert_eq!(c.retention_days, 14.0);
        assert_eq!(c.feature_sets["volatility"]["window"], 30.0);
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let c = parts("[feature_store]\ncache_dir = \"cache\"\nmanifest_path = \"m/x.duckdb\"\n", &[]).unwrap();
        assert_eq!(c.cache_dir, PathBuf::from("/etc/cache"));
        assert_eq!(c.manifest_path, PathBuf::from("/etc/m/x.duckdb"));
    }

    #[test]
    fn invalid_values_name_the_key_and_origin() {
        let e = parts("[feature_store]\ncompression_level = 40\n", &[]).unwrap_err().to_string();
        assert!(e.contains("`compression_level`") && e.contains("/etc/cachescope.toml"), "{e}");
        let e = parts("", &[("FEATURE_CACHE_RETENTION_DAYS", "soon")]).unwrap_err().to_string();
        assert!(e.contains("`retention_days`") && e.contains("FEATURE_CACHE_RETENTION_DAYS"), "{e}");
        let e = parts("[feature_store]\ncleanup_threshold = 0.5\n", &[]).unwrap_err().to_string();
        assert!(e.contains("`eviction_target`"), "{e}");
        let e = parts("[feature_store]\nmax_cache_size_gb = -1\n", &[]).unwrap_err().to_string();
        assert!(e.contains("`max_cache_size_gb`"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = parts("[feature_store]\nmax_cache_gb = 3\n", &[]).unwrap_err().to_string();
        assert!(e.contains("max_cache_gb"), "{e}");
    }
}
