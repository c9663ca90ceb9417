//! `groundup up --timings`: per step, its wall time (measured here), and the AWS calls and
//! key generation the step reports itself (see [`groundup_runtime::timings`]) as an event on
//! its side channel (see [`crate::events`]).

use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;
use groundup_runtime::timings::StepFigures;
use serde::Serialize;

use crate::events::Reported;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimingsFormat {
    /// A table on stderr
    Table,
    /// JSON on stdout
    Json,
}

/// The figures of one run of `up`.
pub struct Timings {
    format: TimingsFormat,
    /// What the steps and their head starts reported.
    reported: Reported,
    walls: Vec<(String, Duration)>,
}

#[derive(Serialize)]
struct Row {
    step: String,
    wall_seconds: f64,
    #[serde(flatten)]
    figures: Figures,
}

/// What the step reported, without its name (the row has it); zeros if it reported nothing.
#[derive(Serialize, Default)]
struct Figures {
    api_calls: u64,
    api_seconds: f64,
    keys: u64,
    keygen_seconds: f64,
}

#[derive(Serialize)]
struct Report {
    steps: Vec<Row>,
    total_seconds: f64,
}

impl Timings {
    pub fn start(format: TimingsFormat) -> Timings {
        Timings { format, reported: Reported::default(), walls: Vec::new() }
    }

    /// Where the steps' events put their figures.
    pub fn reported(&self) -> Reported {
        Reported::clone(&self.reported)
    }

    pub fn step_done(&mut self, step: &str, wall: Duration) {
        self.walls.push((step.to_string(), wall));
    }

    /// The table on stderr, or the JSON on stdout.
    pub fn print(&self, total: Duration) -> Result<()> {
        let reported = self.reported.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let report = report(&reported, &self.walls, total);
        match self.format {
            TimingsFormat::Json => groundup_runtime::output::print_line(&serde_json::to_string_pretty(&report)?)?,
            TimingsFormat::Table => eprint!("{}", table(&report)),
        }
        Ok(())
    }
}

/// Joins the runner's wall times with what the steps reported, by step name: a step's head
/// start reports under the step's name too, and their figures add up.
fn report(reported: &[StepFigures], walls: &[(String, Duration)], total: Duration) -> Report {
    let steps = walls
        .iter()
        .map(|(step, wall)| {
            let figures = reported.iter().filter(|f| &f.step == step).fold(Figures::default(), |sum, f| Figures {
                api_calls: sum.api_calls + f.api_calls,
                api_seconds: sum.api_seconds + f.api_seconds,
                keys: sum.keys + f.keys,
                keygen_seconds: sum.keygen_seconds + f.keygen_seconds,
            });
            Row { step: step.clone(), wall_seconds: wall.as_secs_f64(), figures }
        })
        .collect();
    Report { steps, total_seconds: total.as_secs_f64() }
}

fn table(report: &Report) -> String {
    let mut out =
        format!("{:<12} {:>9} {:>9} {:>9} {:>6} {:>9}\n", "step", "wall s", "api calls", "api s", "keys", "keygen s");
    let mut sum = Figures::default();
    for row in &report.steps {
        let f = &row.figures;
        out += &format!(
            "{:<12} {:>9.2} {:>9} {:>9.2} {:>6} {:>9.2}\n",
            row.step, row.wall_seconds, f.api_calls, f.api_seconds, f.keys, f.keygen_seconds
        );
        sum.api_calls += f.api_calls;
        sum.api_seconds += f.api_seconds;
        sum.keys += f.keys;
        sum.keygen_seconds += f.keygen_seconds;
    }
    out += &format!(
        "{:<12} {:>9.2} {:>9} {:>9.2} {:>6} {:>9.2}\n",
        "total", report.total_seconds, sum.api_calls, sum.api_seconds, sum.keys, sum.keygen_seconds
    );
    out += "(api s and keygen s add up calls and keys made concurrently, so they can exceed wall s)\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_wall_times_with_what_the_steps_reported() {
        let reported = concat!(
            r#"{"step":"vpc","api_calls":4,"api_seconds":0.2,"keys":0,"keygen_seconds":0.0}"#,
            "\n",
            r#"{"step":"certs","api_calls":0,"api_seconds":0.0,"keys":19,"keygen_seconds":3.5}"#,
            "\n",
            // compute's head start, then compute: one row.
            r#"{"step":"compute","api_calls":0,"api_seconds":0.0,"keys":1,"keygen_seconds":0.1}"#,
            "\n",
            r#"{"step":"compute","api_calls":18,"api_seconds":0.7,"keys":0,"keygen_seconds":0.0}"#,
            "\n"
        );
        let walls = [("vpc", 1), ("plugin", 2), ("compute", 1), ("certs", 3)]
            .map(|(s, w)| (s.to_string(), Duration::from_secs(w)));
        let reported: Vec<StepFigures> = reported.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let report = report(&reported, &walls, Duration::from_secs(6));
        let figures: Vec<(&str, f64, u64, u64)> = report
            .steps
            .iter()
            .map(|r| (r.step.as_str(), r.wall_seconds, r.figures.api_calls, r.figures.keys))
            .collect();
        assert_eq!(
            figures,
            [("vpc", 1.0, 4, 0), ("plugin", 2.0, 0, 0), ("compute", 1.0, 18, 1), ("certs", 3.0, 0, 19)]
        );
        let table = table(&report);
        assert!(table.lines().any(|l| l.starts_with("total") && l.contains(" 22 ") && l.contains(" 20 ")), "{table}");
    }
}
