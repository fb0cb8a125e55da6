//! The consensus step of `zerolabel run` (issue 13, item 3): the seeds' geometry names voted in
//! the selected seed's cluster order, a nearest-centre classifier per seed under the vote, and
//! `consensus.json`. With the geometry chain the consensus classifier is the one `predict` uses.
use super::Plan;
use crate::eval;
use crate::io;
use crate::layout::SeedsLayout;
use crate::matching::nearest_centroid_classifier;
use crate::naming::consensus::{self, ConsensusRun};
use crate::naming::geometry::compared_centres;
use crate::naming::{named_centroids, GeometryNamer, NamingKind};
use crate::orchestrator::{self, SeedRecord};
use crate::stages::FeatureData;
use anyhow::Result;
use tch::{Device, Kind, Tensor};

/// Votes, writes each seed's consensus classifier and `consensus.json`; None with one seed or
/// with `naming_consensus = false`.
pub(super) fn seeds_consensus(plan: &Plan, seeds: &SeedsLayout, data: &FeatureData, records: &[SeedRecord], selected_seed: u64) -> Result<Option<ConsensusRun>> {
    if records.len() < 2 || !plan.settings.naming_consensus {
        return Ok(None);
    }
    let per_seed: Vec<(Tensor, Tensor, Vec<usize>)> = records.iter().map(|r| naming_centres(plan, seeds, data, r.seed)).collect::<Result<_>>()?;
    let rows = per_seed.iter().map(|(_, compared, _)| Vec::<Vec<f64>>::try_from(compared.to_kind(Kind::Double))).collect::<std::result::Result<Vec<_>, _>>()?;
    let (centres, sizes): (Vec<Tensor>, Vec<Vec<usize>>) = per_seed.into_iter().map(|(centres, _, sizes)| (centres, sizes)).unzip();
    let namings: Vec<Vec<usize>> = records.iter().map(|r| r.naming_class_of.clone()).collect();
    let seed_list: Vec<u64> = records.iter().map(|r| r.seed).collect();
    let reference = seed_list.iter().position(|&s| s == selected_seed).unwrap_or(0);
    let trusted: Vec<bool> = records.iter().map(|r| r.naming_trust.as_ref().is_some_and(|t| t.trusted)).collect();
    let consensus = consensus::over_seeds(&seed_list, reference, &rows, &namings, &trusted);
    let test = data.test.to_device(Device::Cpu);
    let (mut accuracy, mut test_predictions) = (Vec::new(), Vec::new());
    for ((&seed, centres), class_of) in seed_list.iter().zip(&centres).zip(&consensus.class_of) {
        let classifier = nearest_centroid_classifier(&named_centroids(centres, class_of));
        classifier.save(&seeds.consensus_classifier(seed))?;
        let predictions = classifier.predict(&test);
        if let Some(labels) = data.test_labels.as_deref() {
            accuracy.push(eval::classification_report(&predictions, labels, plan.prior.n_classes()).accuracy);
        }
        test_predictions.push(predictions);
    }
    let is_model = plan.settings.naming.chain == [NamingKind::Geometry];
    let trust = match is_model {
        // The reference seed's geometry naming again (deterministic), to judge the voted names.
        true => Some(GeometryNamer::new(plan.settings.naming.geometry.clone())?.name(&rows[reference], &sizes[reference], &plan.prior, selected_seed)?.trust_of(&consensus.class_of[reference])),
        false => None,
    };
    let run = ConsensusRun { consensus, is_model, accuracy: data.test_labels.is_some().then_some(accuracy), trust, test_predictions };
    io::write_json_atomic(&seeds.consensus(), &run)?;
    Ok(Some(run))
}

/// For `seed`: the centres its classifiers assign samples to (member means, or the learned
/// centres), the centres the geometry naming compared (`geometry::compared_centres`) and
/// the cluster sizes.
fn naming_centres(plan: &Plan, seeds: &SeedsLayout, data: &FeatureData, seed: u64) -> Result<(Tensor, Tensor, Vec<usize>)> {
    let clusters = orchestrator::load_clusters(seeds, seed, &data.train)?;
    let kind = plan.settings.naming.geometry.centres;
    // Without features as given, the compared centres are the unit-length ones.
    let centres = compared_centres(kind, &clusters, None)?;
    let compared = compared_centres(kind, &clusters, data.train_raw.as_ref())?;
    let cpu = |t: &Tensor| t.to_device(Device::Cpu).to_kind(Kind::Float);
    Ok((cpu(&centres), cpu(&compared), clusters.cluster_sizes()))
}
