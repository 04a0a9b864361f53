//! The operations of the API: their gRPC method names, the RAM actions that
//! allow them, and their default per-account rate limits (from the API
//! pages).

/// One RPC of the `RecordIndex` service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    CreateLiveStreamRecordIndexFiles,
    RegisterLiveStreamRecordSegments,
    DescribeLiveStreamRecordIndexFile,
    DescribeLiveStreamRecordIndexFiles,
    DeleteLiveStreamRecordIndexFiles,
    DescribeLiveStreamRecordContent,
    /// Not an API page's: the service's own RPC for players' URLs.
    SignPlaybackUrl,
    /// A playlist of the HTTP playback listener; no RPC.
    Playback,
}

impl Operation {
    pub const ALL: [Operation; 8] = [
        Operation::CreateLiveStreamRecordIndexFiles,
        Operation::RegisterLiveStreamRecordSegments,
        Operation::DescribeLiveStreamRecordIndexFile,
        Operation::DescribeLiveStreamRecordIndexFiles,
        Operation::DeleteLiveStreamRecordIndexFiles,
        Operation::DescribeLiveStreamRecordContent,
        Operation::SignPlaybackUrl,
        Operation::Playback,
    ];

    /// The method name, as in the gRPC path and the config's rate limits.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateLiveStreamRecordIndexFiles => "CreateLiveStreamRecordIndexFiles",
            Operation::RegisterLiveStreamRecordSegments => "RegisterLiveStreamRecordSegments",
            Operation::DescribeLiveStreamRecordIndexFile => "DescribeLiveStreamRecordIndexFile",
            Operation::DescribeLiveStreamRecordIndexFiles => "DescribeLiveStreamRecordIndexFiles",
            Operation::DeleteLiveStreamRecordIndexFiles => "DeleteLiveStreamRecordIndexFiles",
            Operation::DescribeLiveStreamRecordContent => "DescribeLiveStreamRecordContent",
            Operation::SignPlaybackUrl => "SignPlaybackUrl",
            Operation::Playback => "Playback",
        }
    }

    /// The RAM action a key needs for this operation.
    pub fn action(self) -> String {
        format!("live:{}", self.name())
    }

    /// Requests per second one account may make: the API pages' limits,
    /// and for the service's own operations room for many players at once.
    pub fn default_rate_limit(self) -> u32 {
        match self {
            Operation::CreateLiveStreamRecordIndexFiles => 45,
            Operation::RegisterLiveStreamRecordSegments => 500,
            Operation::DescribeLiveStreamRecordIndexFile => 100,
            Operation::DescribeLiveStreamRecordIndexFiles => 15,
            Operation::DeleteLiveStreamRecordIndexFiles => 100,
            Operation::DescribeLiveStreamRecordContent => 50,
            Operation::SignPlaybackUrl => 100,
            Operation::Playback => 200,
        }
    }

    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL
            .into_iter()
            .find(|operation| operation.name() == name)
    }

    /// The operation a gRPC request path (`/recordindex.v1.RecordIndex/X`)
    /// calls; `None` for other services (reflection, health).
    pub fn from_path(path: &str) -> Option<Operation> {
        Operation::from_name(path.strip_prefix("/recordindex.v1.RecordIndex/")?)
            .filter(|operation| *operation != Operation::Playback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_actions() {
        let create =
            Operation::from_path("/recordindex.v1.RecordIndex/CreateLiveStreamRecordIndexFiles");
        assert_eq!(create, Some(Operation::CreateLiveStreamRecordIndexFiles));
        assert_eq!(
            create.unwrap().action(),
            "live:CreateLiveStreamRecordIndexFiles"
        );
        assert_eq!(
            Operation::from_path("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            None
        );
        assert_eq!(
            Operation::from_path("/recordindex.v1.RecordIndex/Nope"),
            None
        );
        for operation in Operation::ALL {
            assert_eq!(Operation::from_name(operation.name()), Some(operation));
        }
        let sign = Operation::from_path("/recordindex.v1.RecordIndex/SignPlaybackUrl");
        assert_eq!(
            sign.map(Operation::action).as_deref(),
            Some("live:SignPlaybackUrl")
        );
        // Playback is the HTTP listener's, never a gRPC method.
        assert_eq!(
            Operation::from_path("/recordindex.v1.RecordIndex/Playback"),
            None
        );
    }
}
