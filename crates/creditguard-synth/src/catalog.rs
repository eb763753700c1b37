//! The course catalog: what each course is worth and how much of it must really be watched.

use std::io::Write;

use creditguard_contract::Category;
use rand::rngs::StdRng;
use rand::Rng;

use crate::Result;

/// One course of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Course {
    pub id: String,
    pub title: String,
    pub category: Category,
    /// Credits granted on completion.
    pub credits: f64,
    /// Total content length in seconds (sum of lessons; the session length for a classroom).
    pub duration_s: u32,
    /// Share of the content that must be covered before the credits are granted (0 for
    /// classroom courses, which have no video).
    pub min_watch_ratio: f64,
    /// Lesson lengths in milliseconds (empty for a classroom course).
    pub lessons_ms: Vec<i64>,
    /// Lesson ids, parallel to `lessons_ms`.
    pub lesson_ids: Vec<String>,
    /// What the course is about (`management`, `compliance`, …): the catalog's `topic` column,
    /// for credit policies with a minimum per topic.
    pub topic: &'static str,
}

impl Course {
    /// A classroom (offline) course: attendance by check-in, no video.
    pub fn is_classroom(&self) -> bool {
        self.lessons_ms.is_empty()
    }

    /// Credits in half-credit units, the generator's fixed-point form.
    pub(crate) fn credits_x2(&self) -> u32 {
        (self.credits * 2.0).round() as u32
    }
}

/// The course catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub courses: Vec<Course>,
}

const TOPICS: [&str; 30] = [
    "Information Security Basics",
    "Anti-Bribery and Compliance",
    "Workplace Safety",
    "Data Privacy and PIPL",
    "Code of Conduct",
    "Fire Safety Drill",
    "Excel for Analysts",
    "Effective Meetings",
    "Negotiation Skills",
    "Project Management Fundamentals",
    "Customer Service Excellence",
    "Leading Remote Teams",
    "Financial Literacy for Managers",
    "Presentation Skills",
    "Time Management",
    "Conflict Resolution",
    "Introduction to SQL",
    "Supply Chain Essentials",
    "Agile and Scrum",
    "Business Writing",
    "Cloud Computing Basics",
    "Diversity and Inclusion",
    "Quality Management",
    "Sales Fundamentals",
    "Coaching and Feedback",
    "Product Knowledge",
    "Risk Management",
    "Phishing Awareness",
    "Mental Health at Work",
    "Cross-Cultural Communication",
];

/// The subject of each title of [`TOPICS`] (the catalog's `topic` column).
const SUBJECTS: [&str; 30] = [
    "compliance",
    "compliance",
    "compliance",
    "compliance",
    "compliance",
    "compliance",
    "technology",
    "management",
    "sales",
    "management",
    "sales",
    "management",
    "management",
    "communication",
    "management",
    "management",
    "technology",
    "operations",
    "technology",
    "communication",
    "technology",
    "culture",
    "operations",
    "sales",
    "management",
    "sales",
    "operations",
    "compliance",
    "culture",
    "communication",
];

/// Online courses in the catalog; the rest are classroom sessions.
const ONLINE: usize = 80;
const CLASSROOM: usize = 10;

impl Catalog {
    pub(crate) fn generate(rng: &mut StdRng) -> Catalog {
        let mut courses = Vec::with_capacity(ONLINE + CLASSROOM);
        for i in 0..ONLINE + CLASSROOM {
            let id = format!("C{:03}", i + 1);
            let topic = TOPICS[i % TOPICS.len()];
            let part = i / TOPICS.len() + 1;
            if i < ONLINE {
                let n = rng.random_range(2..=5usize);
                // Lessons 4–14 minutes, whole seconds; at least one of 7+ minutes so every course
                // can host a lesson long enough for the watch-time rules' 5-minute floor.
                let mut lessons_ms: Vec<i64> = (0..n)
                    .map(|_| rng.random_range(240..=840i64) * 1000)
                    .collect();
                if lessons_ms.iter().all(|&d| d < 420_000) {
                    lessons_ms[0] = rng.random_range(420..=840i64) * 1000;
                }
                let total_s = (lessons_ms.iter().sum::<i64>() / 1000) as u32;
                // One credit per 15 minutes of content, in halves, at least half a credit.
                let credits = ((f64::from(total_s) / 900.0 * 2.0).round() / 2.0).max(0.5);
                let category = if i % 4 == 0 {
                    Category::Mandatory
                } else {
                    Category::Elective
                };
                let ratios = [0.8, 0.85, 0.9, 0.95];
                courses.push(Course {
                    lesson_ids: (1..=n).map(|l| format!("{id}-L{l}")).collect(),
                    id,
                    title: if part > 1 {
                        format!("{topic} {part}")
                    } else {
                        topic.to_string()
                    },
                    category,
                    credits,
                    duration_s: total_s,
                    min_watch_ratio: ratios[rng.random_range(0..ratios.len())],
                    lessons_ms,
                    topic: SUBJECTS[i % TOPICS.len()],
                });
            } else {
                let hours = rng.random_range(2..=4u32);
                courses.push(Course {
                    id,
                    title: format!("{topic} Workshop"),
                    category: Category::Practice,
                    credits: f64::from(hours),
                    duration_s: hours * 3600,
                    min_watch_ratio: 0.0,
                    lessons_ms: Vec::new(),
                    lesson_ids: Vec::new(),
                    topic: SUBJECTS[i % TOPICS.len()],
                });
            }
        }
        Catalog { courses }
    }

    /// Indices of the online (video) courses.
    pub(crate) fn online(&self) -> impl Iterator<Item = usize> + '_ {
        self.courses
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_classroom())
            .map(|(i, _)| i)
    }

    /// Indices of the classroom courses.
    pub(crate) fn classroom(&self) -> Vec<usize> {
        self.courses
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_classroom())
            .map(|(i, _)| i)
            .collect()
    }

    /// Writes `course_id,title,category,credits,duration_s,min_watch_ratio,topic,quiz` CSV
    /// (titles never contain commas or quotes, so no quoting is needed). Every online course ends
    /// in a quiz (`quiz` `yes`); classroom workshops have none.
    pub fn write_csv<W: Write>(&self, mut w: W) -> Result<()> {
        writeln!(
            w,
            "course_id,title,category,credits,duration_s,min_watch_ratio,topic,quiz"
        )?;
        for c in &self.courses {
            writeln!(
                w,
                "{},{},{},{},{},{},{},{}",
                c.id,
                c.title,
                c.category,
                c.credits,
                c.duration_s,
                c.min_watch_ratio,
                c.topic,
                if c.is_classroom() { "no" } else { "yes" }
            )?;
        }
        w.flush()?;
        Ok(())
    }

    /// Looks a course up by id.
    pub fn get(&self, id: &str) -> Option<&Course> {
        self.courses.iter().find(|c| c.id == id)
    }
}
