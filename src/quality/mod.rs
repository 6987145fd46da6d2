//! Internal quality assurance: each centre's sampling strategy (a risk band per assessor, a
//! sampling rate per band), a reproducible stratified sample of assessed evidence, the sampling
//! plan, signed sample records (agree, or refer back with actions; the assessor responds; the
//! IQA closes), CAMERA coverage and standardisation meetings.

mod routes;
pub mod sampling;

pub use routes::router;
pub use sampling::{
    Coverage, Meeting, PlanRow, PopulationItem, RiskBand, SampleOutcome, Stage, Strategy, Stratum, coverage, draw_from,
    population, referred_back_to, samples_of_evidence,
};
