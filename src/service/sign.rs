//! SignPlaybackUrl: the URL of the playback listener for a range of one
//! stream, signed with the caller's account's primary playback key, for a
//! player to fetch as it is. The URL is refused for what the listener
//! would refuse it for now; nothing is read but the streams' records.

use std::collections::BTreeMap;

use super::playback::{PlaylistRequest, check_suffixes, check_url_segment, stream_names};
use super::window::ClipMode;
use super::{IndexService, check_required};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::manifest::time::{format_request_time, parse_request_time};
use crate::manifest::{MICROS_PER_SECOND, Micros, names};
use crate::operations::Operation;
use crate::playback::routes;
use crate::playback::signing::{self, SigningKeys};
use crate::proto;

/// How playback URLs are signed: shared by the listener, which checks
/// them, and SignPlaybackUrl, which makes them.
#[derive(Debug, Default)]
pub struct PlaybackSigning {
    /// Each account's URL signing keys; outside local mode an account
    /// without any has no playback.
    pub keys: BTreeMap<String, SigningKeys>,
    /// Local mode: the listener asks for no signature.
    pub local_mode: bool,
    /// `scheme://host[:port]` players reach the listener at, when known.
    pub origin: Option<String>,
}

impl PlaybackSigning {
    /// The keys that sign `account`'s URLs; `None` in local mode, where
    /// URLs are not signed.
    fn keys_of(&self, account: &str) -> ApiResult<Option<&SigningKeys>> {
        if self.local_mode {
            return Ok(None);
        }
        match self.keys.get(account) {
            Some(keys) => Ok(Some(keys)),
            None => Err(ApiError::OperationNotSupport(format!(
                "account {account} has no playback signing keys ([accounts.playback]), so its \
                 URLs cannot be signed"
            ))),
        }
    }
}

impl IndexService {
    pub async fn sign_playback_url(
        &self,
        caller: &Caller,
        request: proto::SignPlaybackUrlRequest,
    ) -> ApiResult<proto::SignPlaybackUrlResponse> {
        caller.authorize(Operation::SignPlaybackUrl, &request.domain_name)?;
        let keys = self.playback_signing.keys_of(&caller.account.id)?;
        let lifetime = check_fields(&request, keys)?;
        let playlist = playlist_of(&request)?;
        let names = stream_names(&request.stream_name, &request.renditions);
        self.check_playlist(caller, &playlist, &names).await?;
        let (path, query) = routes::url_of(&playlist, &request.renditions);
        let now = self.clock.now().div_euclid(MICROS_PER_SECOND);
        let (playback_path, expire_time) = match keys {
            None => (format!("{path}?{query}"), String::new()),
            Some(keys) => {
                let timestamp = signing::timestamp_expiring_in(now, lifetime, keys.validity_secs())
                    .ok_or_else(|| ApiError::internal("the URL's timestamp is out of range"))?;
                let rand = signing::new_rand();
                let auth_key = signing::sign(
                    &path,
                    keys.primary(),
                    timestamp,
                    &rand,
                    signing::DEFAULT_UID,
                );
                let expires_at = now.saturating_add(lifetime as i64);
                (
                    format!("{path}?{query}&{}={auth_key}", signing::PARAM),
                    format_request_time(expires_at.saturating_mul(MICROS_PER_SECOND)),
                )
            }
        };
        let playback_url = match &self.playback_signing.origin {
            Some(origin) => format!("{origin}{playback_path}"),
            None => String::new(),
        };
        Ok(proto::SignPlaybackUrlResponse {
            request_id: String::new(),
            playback_path,
            playback_url,
            expire_time,
        })
    }
}

/// Rule 1: the names (each a segment a URL can carry), the required
/// StartTime, ClipMode, Renditions and ValiditySeconds; the seconds the URL
/// is to live.
fn check_fields(
    request: &proto::SignPlaybackUrlRequest,
    keys: Option<&SigningKeys>,
) -> ApiResult<u64> {
    check_required(
        &request.domain_name,
        &request.app_name,
        &request.stream_name,
        &[("StartTime", &request.start_time)],
    )?;
    ClipMode::parse(&request.clip_mode)?;
    check_url_segment("AppName", &request.app_name)?;
    check_url_segment("StreamName", &request.stream_name)?;
    if !request.renditions.is_empty() {
        check_suffixes(&request.renditions)?;
        for name in stream_names(&request.stream_name, &request.renditions) {
            names::check_stream_names(&request.domain_name, &request.app_name, &name)?;
            check_url_segment("a rendition's StreamName", &name)?;
        }
    }
    lifetime(request.validity_seconds, keys)
}

/// ValiditySeconds: 0 for the account's validity, else 1 to twice it (a
/// timestamp further ahead would be refused by the listener). Without
/// keys (local mode) the URL is not signed, and only a negative value is
/// wrong.
fn lifetime(validity_seconds: i64, keys: Option<&SigningKeys>) -> ApiResult<u64> {
    let Ok(asked) = u64::try_from(validity_seconds) else {
        return Err(ApiError::InvalidParams(
            "ValiditySeconds must not be negative".into(),
        ));
    };
    let Some(keys) = keys else {
        return Ok(asked);
    };
    let validity = keys.validity_secs();
    let longest = validity.saturating_mul(2);
    match asked {
        0 => Ok(validity),
        asked if asked <= longest => Ok(asked),
        _ => Err(ApiError::InvalidParams(format!(
            "ValiditySeconds must be 0 (the account's validity, {validity} s) or 1 to {longest}"
        ))),
    }
}

/// Rule 2: the times, into the request the URL will make.
fn playlist_of(request: &proto::SignPlaybackUrlRequest) -> ApiResult<PlaylistRequest> {
    let start = parse_request_time(&request.start_time).ok_or_else(|| {
        ApiError::StartTimeMalformed("StartTime must be yyyy-MM-ddTHH:mm:ssZ".into())
    })?;
    let end: Option<Micros> = match request.end_time.as_str() {
        "" => None,
        end => Some(parse_request_time(end).ok_or_else(|| {
            ApiError::EndTimeMalformed(
                "EndTime must be yyyy-MM-ddTHH:mm:ssZ, or empty for the live edge".into(),
            )
        })?),
    };
    Ok(PlaylistRequest {
        domain_name: request.domain_name.clone(),
        app_name: request.app_name.clone(),
        stream_name: request.stream_name.clone(),
        start,
        end,
        end_time_included: request.end_time_included,
        clip_mode: ClipMode::parse(&request.clip_mode)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(validity: u64) -> SigningKeys {
        SigningKeys::new("k".into(), None, validity)
    }

    #[test]
    fn validity_seconds_is_bounded_by_the_accounts_validity() {
        let keys = keys(600);
        assert_eq!(lifetime(0, Some(&keys)), Ok(600));
        assert_eq!(lifetime(1, Some(&keys)), Ok(1));
        assert_eq!(lifetime(1200, Some(&keys)), Ok(1200));
        for bad in [1201, -1, i64::MIN, i64::MAX] {
            let err = lifetime(bad, Some(&keys)).unwrap_err();
            assert_eq!(err.code(), "InvalidParams", "{bad}");
        }
        assert!(
            lifetime(1201, Some(&keys))
                .unwrap_err()
                .to_string()
                .contains("1 to 1200")
        );
        // Unsigned URLs (local mode) do not expire.
        assert_eq!(lifetime(i64::MAX, None), Ok(i64::MAX as u64));
        assert!(lifetime(-5, None).is_err());
    }

    #[test]
    fn only_local_mode_signs_without_keys() {
        let mut signing = PlaybackSigning::default();
        let err = signing.keys_of("42").unwrap_err();
        assert_eq!(err.code(), "OperationNotSupport");
        assert!(err.to_string().contains("[accounts.playback]"), "{err}");
        signing.keys.insert("42".into(), keys(60));
        assert!(signing.keys_of("42").unwrap().is_some());
        signing.local_mode = true;
        assert!(signing.keys_of("local").unwrap().is_none());
    }

    #[test]
    fn names_no_url_can_carry_are_refused() {
        let request =
            |app: &str, stream: &str, renditions: &[&str]| proto::SignPlaybackUrlRequest {
                domain_name: "d.com".into(),
                app_name: app.into(),
                stream_name: stream.into(),
                start_time: "2026-11-19T12:00:00Z".into(),
                renditions: renditions.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            };
        for (app, stream, renditions) in [
            ("..", "s", &[][..]),
            ("live", ".", &[]),
            ("live", "..", &[]),
            ("live", ".", &["."]),
        ] {
            let err = check_fields(&request(app, stream, renditions), None).unwrap_err();
            assert_eq!(err.code(), "InvalidParams", "{app}/{stream}");
            assert!(err.to_string().contains("cannot be played"), "{err}");
        }
        assert!(check_fields(&request("...", "a..b", &["_."]), None).is_ok());
    }

    #[test]
    fn an_empty_end_is_the_live_edge_and_times_are_strict() {
        let request = |start: &str, end: &str| proto::SignPlaybackUrlRequest {
            domain_name: "d.com".into(),
            app_name: "live".into(),
            stream_name: "s".into(),
            start_time: start.into(),
            end_time: end.into(),
            ..Default::default()
        };
        let live = playlist_of(&request("2026-11-19T12:00:00Z", "")).unwrap();
        assert_eq!(live.end, None);
        assert_eq!(live.start, 1_795_089_600 * MICROS_PER_SECOND);
        let err = playlist_of(&request("1795089600", "")).unwrap_err();
        assert_eq!(err.code(), "InvalidStartTime.Malformed");
        let err = playlist_of(&request("2026-11-19T12:00:00Z", "now")).unwrap_err();
        assert_eq!(err.code(), "InvalidEndTime.Malformed");
    }
}
