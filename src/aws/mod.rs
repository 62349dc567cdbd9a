//! AWS as a source: Secrets Manager and SSM Parameter Store, signed with
//! SigV4, on the same hyper client stack the Vault client uses.
//!
//! * this module: what an AWS store is ([`AwsStore`]: name, region,
//!   endpoint) and what one secret reads ([`AwsRead`]), the source's own
//!   input types (the config validates them, the plan carries them);
//!   [`AwsError`], classified like Vault's errors (`auth`, `not_found`,
//!   `throttled`, `network`, `invalid_response`).
//! * [`credentials`]: the default credential chain (environment, web
//!   identity) and its refresh.
//! * [`client`]: one signed request, the answers of `GetSecretValue`,
//!   `GetParameter` and `GetParametersByPath` decoded into a secret's
//!   fields.
//!
//! Nothing here imports the config, the plan or an actor.

pub(crate) mod client;
pub(crate) mod credentials;

/// A named AWS store (`secretStores.NAME` with `provider: aws`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsStore {
    pub name: String,
    /// `eu-west-1`: the field, else AWS_REGION, else AWS_DEFAULT_REGION.
    pub region: String,
    /// Base URL of every service (an emulator, a VPC endpoint); `None`:
    /// `https://<service>.<region>.amazonaws.com`. The field, else
    /// AWS_ENDPOINT_URL, else vaultmux's AWS_ENDPOINT.
    pub endpoint: Option<String>,
}

/// What one secret reads from an AWS store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsRead {
    /// Secrets Manager `GetSecretValue`: a JSON object's fields, or the
    /// field `value`; `version` is a staging label or a version id.
    Secret { id: String, version: Option<String> },
    /// SSM `GetParameter` (decrypted): the field `value`.
    Parameter { name: String },
    /// SSM `GetParametersByPath` (recursive, decrypted), for a name that
    /// ends in `/`: a field per parameter, named by what follows the path.
    Path { path: String },
}

impl AwsRead {
    /// How `/status`, logs and metrics name it: `secretsmanager:ID`,
    /// `ssm:NAME`.
    pub fn display(&self) -> String {
        match self {
            AwsRead::Secret { id, .. } => format!("secretsmanager:{id}"),
            AwsRead::Parameter { name } => format!("ssm:{name}"),
            AwsRead::Path { path } => format!("ssm:{path}"),
        }
    }
}

/// Why an AWS read failed. No variant carries a secret value, a key or a
/// token: AWS's own error type and message (which name the resource, not
/// its content) at most.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AwsError {
    #[error("AWS refused the credentials or the request ({detail}); check the store's credentials and the IAM policy (secretsmanager:GetSecretValue, ssm:GetParameter(s)ByPath, kms:Decrypt)")]
    Auth { detail: String },
    #[error("{what} does not exist in the store ({detail})")]
    NotFound { what: String, detail: String },
    #[error("AWS throttled the request ({detail}); retried with backoff")]
    Throttled { detail: String },
    #[error("cannot reach AWS at {endpoint}: {detail}")]
    Network { endpoint: String, detail: String },
    #[error("no AWS credentials: {detail}")]
    Credentials { detail: String },
    #[error("AWS answered something unexpected ({detail})")]
    Invalid { detail: String },
    #[error("the circuit breaker of this AWS store is {state}: no request sent (retry in {}s)", retry_in.as_secs())]
    CircuitOpen {
        state: &'static str,
        retry_in: std::time::Duration,
    },
}

impl AwsError {
    /// The `error_kind` label, as Vault's errors name theirs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            AwsError::Auth { .. } | AwsError::Credentials { .. } => "auth",
            AwsError::NotFound { .. } => "not_found",
            AwsError::Throttled { .. } => "throttled",
            AwsError::Network { .. } => "network",
            AwsError::Invalid { .. } => "invalid_response",
            AwsError::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// A failure of the store itself (no answer, throttling): it counts
    /// toward the breaker; a refused key or a missing secret does not.
    pub(crate) fn is_store_failure(&self) -> bool {
        matches!(self, AwsError::Network { .. } | AwsError::Throttled { .. })
    }
}
