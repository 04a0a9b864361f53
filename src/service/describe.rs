//! DescribeLiveStreamRecordIndexFile and DescribeLiveStreamRecordIndexFiles:
//! reading manifest metadata, one by id or a page by creation time.

use super::{IndexService, blocking, check_required, listing_window, record_info, stream_name};
use crate::auth::Caller;
use crate::catalog::{ManifestQuery, ManifestRecord, Order};
use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::MICROS_PER_SECOND;
use crate::operations::Operation;
use crate::proto;

pub const DEFAULT_PAGE_SIZE: i32 = 10;
pub const PAGE_SIZES: std::ops::RangeInclusive<i32> = 5..=30;

fn not_found(record_id: &str) -> ApiError {
    ApiError::RecordIdNotFound(format!("no manifest {} of this stream", quote(record_id)))
}

fn of_stream(record: &ManifestRecord, domain: &str, app: &str, stream: &str) -> bool {
    record.domain_name == domain && record.app_name == app && record.stream_name == stream
}

impl IndexService {
    pub async fn describe_file(
        &self,
        caller: &Caller,
        request: proto::DescribeLiveStreamRecordIndexFileRequest,
    ) -> ApiResult<proto::RecordInfo> {
        caller.authorize(
            Operation::DescribeLiveStreamRecordIndexFile,
            &request.domain_name,
        )?;
        check_required(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
            &[("RecordId", &request.record_id)],
        )?;
        let record_id =
            uuid::Uuid::parse_str(&request.record_id).map_err(|_| not_found(&request.record_id))?;
        let record = self
            .catalog
            .manifest(&record_id, self.clock.now())?
            .filter(|record| {
                of_stream(
                    record,
                    &request.domain_name,
                    &request.app_name,
                    &request.stream_name,
                )
            })
            .ok_or_else(|| not_found(&request.record_id))?;
        Ok(record_info(&record))
    }

    pub async fn describe_files(
        &self,
        caller: &Caller,
        request: proto::DescribeLiveStreamRecordIndexFilesRequest,
    ) -> ApiResult<proto::DescribeLiveStreamRecordIndexFilesResponse> {
        caller.authorize(
            Operation::DescribeLiveStreamRecordIndexFiles,
            &request.domain_name,
        )?;
        check_required(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
            &[
                ("StartTime", &request.start_time),
                ("EndTime", &request.end_time),
            ],
        )?;
        let page_num = match request.page_num {
            0 => 1,
            n if n >= 1 => n,
            _ => return Err(ApiError::InvalidParams("PageNum must be at least 1".into())),
        };
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if PAGE_SIZES.contains(&n) => n,
            _ => return Err(ApiError::InvalidParams("PageSize must be 5 to 30".into())),
        };
        let order = match request.order.as_str() {
            "" | "asc" => Order::Ascending,
            "desc" => Order::Descending,
            _ => return Err(ApiError::InvalidParams("Order must be asc or desc".into())),
        };
        let now = self.clock.now();
        let (start, end) = listing_window(&request.start_time, &request.end_time, now)?;
        let name = stream_name(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
        );
        let page = match self.catalog.stream(&name)? {
            Some(stream) => {
                let catalog = self.catalog.clone();
                let skip = (page_num as usize - 1).saturating_mul(page_size as usize);
                blocking(move || {
                    Ok(catalog.list_manifests(
                        ManifestQuery {
                            stream_id: stream.id,
                            from: start,
                            // CreateTime is shown in whole seconds: EndTime takes in its
                            // whole second.
                            until: end.saturating_add(MICROS_PER_SECOND - 1),
                            order,
                            skip,
                            take: page_size as usize,
                        },
                        now,
                    )?)
                })
                .await?
            }
            None => Default::default(),
        };
        let total = page.total.min(i32::MAX as usize) as i32;
        Ok(proto::DescribeLiveStreamRecordIndexFilesResponse {
            request_id: String::new(),
            record_index_info_list: page.records.iter().map(record_info).collect(),
            page_num,
            page_size,
            order: if order == Order::Ascending {
                "asc"
            } else {
                "desc"
            }
            .to_string(),
            total_num: total,
            total_page: (total + page_size - 1) / page_size,
        })
    }
}
