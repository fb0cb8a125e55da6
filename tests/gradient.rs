//! (c) The gradient of L_cgsk with respect to the classifier weights against central finite
//! differences, in f64: once with the plan held constant (the default, envelope-theorem
//! gradient: d<Q, M(W)>/dW with Q = A_B A_B^T R* fixed) and once through the unrolled
//! Sinkhorn iterations (the review code's gradient of the whole loss).
use tch::{Kind, Tensor};
use zerolabel::matching::{cluster_guided_plan, step_loss, weighted_cost, MatchingLoss, MatchingParams, PlanGradient};
use zerolabel::ot::{self, SinkhornParams};
use zerolabel::prior::ordinal::ordinal_prior;
use zerolabel::prior::sampler::{PriorAtoms, PriorSampler};
use zerolabel::prior::PriorParams;
use zerolabel::rng::Rng;

struct Problem {
    x: Tensor,
    w0: Tensor,
    bias: Tensor,
    atoms: PriorAtoms,
    present: Tensor,
    mass: Tensor,
    clusters: Tensor,
}

fn problem() -> Problem {
    let (b, d, c) = (24i64, 6i64, 5usize);
    let mut rng = Rng::new(77);
    let mut normal = |n: i64| Tensor::from_slice(&(0..n).map(|_| rng.normal()).collect::<Vec<_>>());
    let x = normal(b * d).view([b, d]);
    let w0 = normal(c as i64 * d).view([c as i64, d]) * 0.3;
    let bias = normal(c as i64) * 0.1;
    let names: Vec<String> = (0..c).map(|i| format!("grade {i}")).collect();
    let prior = ordinal_prior(&names, PriorParams::default()).unwrap();
    let atoms = PriorAtoms::new(&prior);
    let counts = PriorSampler::new(&atoms, None, Rng::new(3)).sample_counts(b as usize);
    let present: Vec<i64> = (0..counts.len() as i64).filter(|&a| counts[a as usize] > 0).collect();
    let mass: Vec<f64> = present.iter().map(|&a| counts[a as usize] as f64 / b as f64).collect();
    let clusters: Vec<i64> = (0..b).map(|i| i % 3).collect();
    Problem {
        x,
        w0,
        bias,
        atoms,
        present: Tensor::from_slice(&present),
        mass: Tensor::from_slice(&mass),
        clusters: Tensor::from_slice(&clusters),
    }
}

/// Largest relative difference between an autograd gradient and central differences of `f`.
fn compare(w0: &Tensor, analytic: &Tensor, f: impl Fn(&Tensor) -> f64) -> f64 {
    let h = 1e-6;
    let flat = w0.view([-1]);
    let n = flat.size()[0];
    let analytic = Vec::<f64>::try_from(analytic.view([-1])).unwrap();
    let scale = analytic.iter().map(|g| g.abs()).fold(0.0, f64::max).max(1e-12);
    let mut worst: f64 = 0.0;
    for k in 0..n {
        let bump = |delta: f64| {
            let w = flat.copy();
            let _ = w.get(k).g_add_(&Tensor::from(delta));
            f(&w.view(w0.size().as_slice()))
        };
        let numeric = (bump(h) - bump(-h)) / (2.0 * h);
        worst = worst.max((numeric - analytic[k as usize]).abs() / scale);
    }
    worst
}

#[test]
fn constant_plan_gradient_matches_finite_differences() {
    let p = problem();
    let targets = p.atoms.targets.index_select(0, &p.present).to_kind(Kind::Double);
    let weights = p.atoms.weights.index_select(0, &p.present).to_kind(Kind::Double);
    let cost_at = |w: &Tensor| weighted_cost(&(p.x.matmul(&w.tr()) + &p.bias), &targets, &weights);
    let a = ot::uniform(p.x.size()[0], &p.x);
    let sinkhorn = SinkhornParams { epsilon: 0.01, tolerance: 1e-10, max_iters: 5000 };
    let plan = ot::sinkhorn(&cost_at(&p.w0), &a, &p.mass, &sinkhorn, None).plan;
    let q = cluster_guided_plan(&plan, &p.clusters, 3);
    let loss_at = |w: &Tensor| (&q * cost_at(w)).sum(Kind::Double);
    let w = p.w0.copy().set_requires_grad(true);
    let loss = loss_at(&w);
    loss.backward();
    let worst = compare(&p.w0, &w.grad(), |w| loss_at(w).double_value(&[]));
    println!("constant plan: largest relative deviation {worst:e}");
    assert!(worst < 1e-6, "gradient deviates from finite differences by {worst:e}");
}

#[test]
fn unrolled_gradient_matches_finite_differences_of_the_whole_loss() {
    let p = problem();
    // A fixed number of iterations (the tolerance is never met), so that the loss is one
    // smooth function of W that the finite differences and autograd both see.
    let params = MatchingParams {
        loss: MatchingLoss::Cgsk,
        plan_gradient: PlanGradient::Unrolled,
        sinkhorn: SinkhornParams { epsilon: 0.05, tolerance: 1e-300, max_iters: 60 },
        ..Default::default()
    };
    let loss_at = |w: &Tensor| {
        let logits = p.x.matmul(&w.tr()) + &p.bias;
        step_loss(&logits, &p.atoms, &p.present, &p.mass, Some((&p.clusters, 3)), &params, None).0
    };
    let w = p.w0.copy().set_requires_grad(true);
    let loss = loss_at(&w);
    loss.backward();
    // The finite differences run the same differentiable path (W requires grad).
    let worst = compare(&p.w0, &w.grad(), |w| loss_at(&w.copy().set_requires_grad(true)).double_value(&[]));
    println!("unrolled: largest relative deviation {worst:e}");
    assert!(worst < 1e-5, "gradient deviates from finite differences by {worst:e}");
    // The unrolled and constant-plan gradients differ (the plan depends on W).
    let constant = MatchingParams { plan_gradient: PlanGradient::Constant, ..params.clone() };
    let w2 = p.w0.copy().set_requires_grad(true);
    let logits = p.x.matmul(&w2.tr()) + &p.bias;
    step_loss(&logits, &p.atoms, &p.present, &p.mass, Some((&p.clusters, 3)), &constant, None).0.backward();
    let gap = (w.grad() - w2.grad()).abs().max().double_value(&[]);
    assert!(gap > 1e-6, "unrolled and constant-plan gradients coincide ({gap:e})");
}
