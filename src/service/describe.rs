//! DescribeLiveStreamRecordIndexFile and DescribeLiveStreamRecordIndexFiles:
//! reading manifest metadata, one by id or a page by creation time.

use super::{IndexService, check_required, listing_window, record_info, stream_name};
use crate::auth::Caller;
use crate::catalog::{ManifestPage, ManifestQuery, ManifestRecord, Order};
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

/// Which page of a listing a request asks for.
#[derive(Debug, PartialEq)]
struct Paging {
    page_num: i32,
    page_size: i32,
    order: Order,
}

impl Paging {
    /// Rule 1's paging fields, defaults filled in.
    fn of(request: &proto::DescribeLiveStreamRecordIndexFilesRequest) -> ApiResult<Paging> {
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
        Ok(Paging {
            page_num,
            page_size,
            order,
        })
    }

    fn response(&self, page: ManifestPage) -> proto::DescribeLiveStreamRecordIndexFilesResponse {
        let total = page.total.min(i32::MAX as usize) as i32;
        proto::DescribeLiveStreamRecordIndexFilesResponse {
            request_id: String::new(),
            record_index_info_list: page.records.iter().map(record_info).collect(),
            page_num: self.page_num,
            page_size: self.page_size,
            order: if self.order == Order::Ascending {
                "asc"
            } else {
                "desc"
            }
            .to_string(),
            total_num: total,
            total_page: (total + self.page_size - 1) / self.page_size,
        }
    }
}

impl IndexService {
    pub async fn describe_file(
        &self,
        caller: &Caller,
        request: proto::DescribeLiveStreamRecordIndexFileRequest,
    ) -> ApiResult<proto::DescribeLiveStreamRecordIndexFileResponse> {
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
            .manifest(&record_id, self.clock.now())
            .await?
            .filter(|record| {
                of_stream(
                    record,
                    &request.domain_name,
                    &request.app_name,
                    &request.stream_name,
                )
            })
            .ok_or_else(|| not_found(&request.record_id))?;
        Ok(proto::DescribeLiveStreamRecordIndexFileResponse {
            request_id: String::new(),
            record_index_info: Some(record_info(&record)),
        })
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
        let paging = Paging::of(&request)?;
        let now = self.clock.now();
        let (start, end) = listing_window(&request.start_time, &request.end_time, now)?;
        let name = stream_name(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
        );
        let page = match self.catalog.stream(&name).await? {
            Some(stream) => {
                let query = ManifestQuery {
                    stream_id: stream.id,
                    from: start,
                    // CreateTime is shown in whole seconds: EndTime takes in
                    // its whole second.
                    until: end.saturating_add(MICROS_PER_SECOND - 1),
                    order: paging.order,
                    skip: (paging.page_num as usize - 1).saturating_mul(paging.page_size as usize),
                    take: paging.page_size as usize,
                };
                self.catalog.list_manifests(query, now).await?
            }
            None => Default::default(),
        };
        Ok(paging.response(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(page_num: i32, page_size: i32, order: &str) -> ApiResult<Paging> {
        Paging::of(&proto::DescribeLiveStreamRecordIndexFilesRequest {
            page_num,
            page_size,
            order: order.into(),
            ..Default::default()
        })
    }

    #[test]
    fn paging_fills_in_its_defaults() {
        assert_eq!(
            paging(0, 0, "").unwrap(),
            Paging {
                page_num: 1,
                page_size: DEFAULT_PAGE_SIZE,
                order: Order::Ascending
            }
        );
        assert_eq!(paging(3, 30, "desc").unwrap().order, Order::Descending);
        for (num, size, order) in [(-1, 5, "asc"), (1, 4, "asc"), (1, 31, ""), (1, 5, "up")] {
            assert_eq!(
                paging(num, size, order).unwrap_err().code(),
                "InvalidParams"
            );
        }
    }

    #[test]
    fn a_page_counts_every_page_of_the_range() {
        let page = ManifestPage {
            total: 21,
            records: vec![ManifestRecord::default()],
        };
        let response = paging(2, 10, "desc").unwrap().response(page);
        assert_eq!((response.total_num, response.total_page), (21, 3));
        assert_eq!((response.page_num, response.page_size), (2, 10));
        assert_eq!(response.order, "desc");
        assert_eq!(response.record_index_info_list.len(), 1);
    }
}
