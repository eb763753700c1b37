//! English and Simplified Chinese. The language comes from the `cg_lang` cookie (set by the
//! toggle), else from `Accept-Language`, else English.

use axum::http::HeaderMap;
use creditguard_review::CaseStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

pub const COOKIE: &str = "cg_lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "zh" | "zh-CN" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The other language (what the toggle switches to).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }

    /// The text in this language.
    pub fn t(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// From the cookie, else the highest-weighted English or Chinese tag of `Accept-Language`.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(l) = crate::auth::cookie(headers, COOKIE).and_then(|v| Lang::parse(&v)) {
            return l;
        }
        let Some(accept) = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::En;
        };
        let mut best: Option<(f32, Lang)> = None;
        for part in accept.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = if tag.starts_with("zh") {
                Lang::Zh
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::En)
    }

    pub fn status(self, s: CaseStatus) -> &'static str {
        match s {
            CaseStatus::Open => self.t("open", "待处理"),
            CaseStatus::InReview => self.t("in review", "审核中"),
            CaseStatus::NeedsInfo => self.t("needs info", "待补充信息"),
            CaseStatus::Confirmed => self.t("confirmed", "已确认作弊"),
            CaseStatus::Dismissed => self.t("dismissed", "已驳回"),
            CaseStatus::PartiallyConfirmed => self.t("partially confirmed", "部分确认"),
            CaseStatus::Appealed => self.t("appealed", "申诉中"),
        }
    }

    /// A credit record's status (`results/credits`).
    pub fn credit_status(self, s: &str) -> &'static str {
        match s {
            "granted" => self.t("granted", "已授予"),
            "withheld" => self.t("withheld", "暂扣"),
            "released" => self.t("released", "已释放"),
            "cancelled" => self.t("cancelled", "已取消"),
            _ => self.t("unknown", "未知"),
        }
    }

    /// A learner's progress status.
    pub fn progress_status(self, s: &str) -> &'static str {
        match s {
            "complete" => self.t("complete", "已完成"),
            "on_track" => self.t("on track", "进度正常"),
            "at_risk" => self.t("at risk", "有风险"),
            "behind" => self.t("behind", "落后"),
            _ => self.t("unknown", "未知"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_weightiest_known_tag() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(&h), Lang::En);
        h.insert(
            "accept-language",
            "zh-CN,zh;q=0.9,en;q=0.8".parse().unwrap(),
        );
        assert_eq!(Lang::of(&h), Lang::Zh);
        h.insert(
            "accept-language",
            "fr;q=1, en;q=0.9, zh;q=0.5".parse().unwrap(),
        );
        assert_eq!(Lang::of(&h), Lang::En);
        h.insert("cookie", "cg_lang=zh".parse().unwrap());
        assert_eq!(Lang::of(&h), Lang::Zh);
    }
}
