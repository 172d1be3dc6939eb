//! The report's page: one HTML file with its styles inline and its figures as inline SVG, so
//! it opens anywhere without a network or the files beside it.

use std::fmt::Write;

use super::{FindingsSection, Report, TraceExample};
use crate::findings::Check;
use crate::highlight::pieces;
use crate::table::html_escape;

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1000px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
code, .id { font-family: 'DejaVu Sans Mono', monospace; font-size: .9em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; white-space: nowrap; }
table.results { display: block; overflow-x: auto; max-width: 100%; }
figure { margin: 1.5em 0; } figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
.holds { color: #17692b; font-weight: bold; } .short { color: #b3261e; font-weight: bold; }
.note { font-size: .85em; color: #555; }
.trace { border: 1px solid #ddd; border-radius: 4px; padding: .5em 1em; margin: 1em 0; }
.trace pre { white-space: pre-wrap; background: #fafafa; padding: .5em; margin: .3em 0; }
mark { background: #ffb3b3; font-weight: bold; }
nav a { margin-right: 1em; }
";

/// The page of `report`; `svgs[i]` is the SVG of `report.figures[i]`.
pub fn page(report: &Report, svgs: &[String]) -> String {
    let mut out = String::new();
    let title = html_escape(&report.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p class=\"note\">{} runs, {} figures, {} traces. Every figure and table names the \
         experiments its numbers came from: <code>lab show ID</code> tells about one, \
         <code>lab rerun ID</code> runs it again.</p>\n\
         <nav><a href=\"#runs\">Runs</a><a href=\"#curves\">Curves</a>\
         <a href=\"#findings\">Findings</a><a href=\"#traces\">Traces</a></nav>\n",
        report.runs.len(),
        report.figures.len(),
        report.traces.len()
    );
    runs(report, &mut out);
    curves(report, svgs, &mut out);
    out.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if report.findings.is_empty() {
        out.push_str(
            "<p>No recipe among the chosen experiments: name a recipe to see its findings.</p>\n",
        );
    }
    for section in &report.findings {
        findings(section, &mut out);
    }
    out.push_str("</section>\n");
    traces(&report.traces, &mut out);
    out.push_str("</body>\n</html>\n");
    out
}

fn runs(report: &Report, out: &mut String) {
    out.push_str(
        "<section id=\"runs\">\n<h2>Runs</h2>\n<table>\n\
         <thead><tr><th>experiment</th><th>kind</th><th>name</th><th>attempt</th></tr></thead>\n<tbody>\n",
    );
    for run in &report.runs {
        let _ = writeln!(
            out,
            "<tr><td class=\"id\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            html_escape(&run.experiment),
            html_escape(&run.kind),
            html_escape(&run.name),
            run.attempt
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn curves(report: &Report, svgs: &[String], out: &mut String) {
    out.push_str("<section id=\"curves\">\n<h2>Curves</h2>\n");
    if report.figures.is_empty() {
        out.push_str("<p>None of the chosen runs logged a curve this report draws.</p>\n");
    }
    for (figure, svg) in report.figures.iter().zip(svgs) {
        let ids: Vec<String> = figure
            .experiments()
            .iter()
            .map(|id| format!("<span class=\"id\">{}</span>", html_escape(id)))
            .collect();
        let name = html_escape(&figure.name);
        let _ = write!(
            out,
            "<figure id=\"fig-{name}\">\n{svg}\n<figcaption>{} — experiments: {} · \
             <a href=\"figures/{name}.svg\">SVG</a> · <a href=\"figures/{name}.png\">PNG</a>\
             </figcaption>\n</figure>\n",
            html_escape(&figure.title),
            ids.join(", ")
        );
    }
    out.push_str("</section>\n");
}

fn findings(section: &FindingsSection, out: &mut String) {
    let _ = writeln!(out, "<h3>{}</h3>", html_escape(&section.title));
    if section.checks.is_empty() {
        out.push_str("<p>No finding has evidence here yet (no evaluations).</p>\n");
    }
    for (title, checks) in &section.checks {
        let _ = writeln!(out, "<h4>{}</h4>", html_escape(title));
        out.push_str(
            "<table class=\"findings\">\n<thead><tr><th>finding</th><th>goal</th>\
             <th>measured (± standard error)</th><th>verdict</th><th>experiments</th></tr></thead>\n<tbody>\n",
        );
        for check in checks {
            check_row(check, out);
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if !section.table.is_empty() {
        out.push_str("<h4>Models × benchmarks</h4>\n");
        out.push_str(&crate::results_table::render_html(&section.table));
    }
}

fn check_row(check: &Check, out: &mut String) {
    let verdict = check.verdict.as_str();
    let ids: Vec<String> = check
        .experiments
        .iter()
        .map(|id| {
            format!(
                "<span class=\"id\" title=\"{0}\">{1}</span>",
                html_escape(id),
                html_escape(&id[..id.len().min(12)])
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{verdict}\">{verdict}</td><td>{}</td></tr>",
        html_escape(check.name),
        html_escape(check.goal),
        html_escape(&check.measured),
        ids.join(" ")
    );
}

fn traces(traces: &[TraceExample], out: &mut String) {
    out.push_str(
        "<section id=\"traces\">\n<h2>Traces</h2>\n<p class=\"note\">The last step's \
         completions of RL and evaluation runs, the least language-consistent first; \
         <mark>marked</mark> words are in the other language than the prompt's.</p>\n",
    );
    if traces.is_empty() {
        out.push_str("<p>The chosen runs stored no traces.</p>\n");
    }
    for trace in traces {
        let other = trace.target.map(crate::world::Lang::other);
        let mut completion = String::new();
        for piece in pieces(&trace.completion) {
            let text = html_escape(&piece.text);
            if piece.lang.is_some() && piece.lang == other {
                let _ = write!(completion, "<mark>{text}</mark>");
            } else {
                completion.push_str(&text);
            }
        }
        let parts = trace
            .rewards
            .entries()
            .iter()
            .map(|(name, value)| format!("{name} {value:.3}"))
            .collect::<Vec<_>>()
            .join(" · ");
        let consistency = trace
            .consistency
            .map(|c| format!(" · language consistency {c:.2}"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<article class=\"trace\">\n<h4>{} <span class=\"id\">{}</span> · step {}</h4>\n\
             <p class=\"note\">prompt</p><pre>{}</pre>\n<p class=\"note\">completion</p><pre>{completion}</pre>\n\
             <p class=\"note\">{}{consistency}</p>\n</article>\n",
            html_escape(&trace.run_name),
            html_escape(&trace.experiment[..12]),
            trace.step,
            html_escape(&trace.prompt),
            html_escape(&parts),
        );
    }
    out.push_str("</section>\n");
}
