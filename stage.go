package anomnet

// Stage names one step of Fit, as Progress and Snapshot report it.
type Stage string

// The stages of Fit, in the order they run. Stage1, Stage2 and StageJoint
// are the training stages (Config.Plans says which run); the others are
// the work around them.
const (
	StageFeatures  Stage = "features"  // backbone features of the training images
	StageInit      Stage = "init"      // adapter and centroid initialisation
	StageSeed      Stage = "seed"      // farthest-point seeding (InitKCenter)
	Stage1         Stage = "stage1"    // centroid optimisation (METHOD.md 4)
	Stage2         Stage = "stage2"    // contrastive learning, centroids frozen
	StageJoint     Stage = "joint"     // Config.SingleStage: every loss at once
	StageCalibrate Stage = "calibrate" // normalisation and thresholds
)

// String names the stage for people: "stage 1", "calibrate".
func (s Stage) String() string {
	switch s {
	case Stage1:
		return "stage 1"
	case Stage2:
		return "stage 2"
	}
	return string(s)
}

// Trains reports whether the stage takes training steps (and has losses).
func (s Stage) Trains() bool { return s == Stage1 || s == Stage2 || s == StageJoint }

// Plan is what one training stage does: which parameters train and which
// loss terms it minimises (attraction always).
type Plan struct {
	Stage  Stage
	Epochs int
	// Centroids reports whether the centroids train; the adapter always does.
	Centroids bool
	// Sep, Ent and Con switch on the separation, entropy and contrastive
	// terms.
	Sep, Ent, Con bool
}

// Plans returns the training stages that Fit runs under c, in order:
// stage 1 then stage 2 (unless NoStage2), or the joint stage alone
// (SingleStage). A stage with zero epochs is left out: with the defaults
// (no epochs) there is none.
func (c Config) Plans() []Plan {
	var plans []Plan
	add := func(p Plan) {
		if p.Epochs > 0 {
			plans = append(plans, p)
		}
	}
	if c.SingleStage {
		add(Plan{Stage: StageJoint, Epochs: c.Epochs1, Centroids: true, Sep: !c.NoSep, Ent: !c.NoEnt, Con: !c.NoCon})
		return plans
	}
	add(Plan{Stage: Stage1, Epochs: c.Epochs1, Centroids: true, Sep: !c.NoSep, Ent: !c.NoEnt})
	if !c.NoStage2 {
		add(Plan{Stage: Stage2, Epochs: c.Epochs2, Con: true})
	}
	return plans
}

// Plan returns c's plan of training stage s: one of Plans, or a Plan of
// Stage s with nothing else set if s does not run under c.
func (c Config) Plan(s Stage) Plan {
	for _, p := range c.Plans() {
		if p.Stage == s {
			return p
		}
	}
	return Plan{Stage: s}
}

// Term is one named loss term's value.
type Term struct {
	Name  string
	Value float64
}

// Terms returns the terms of l that plan p minimises, the weighted total
// first, then attraction, separation, entropy and the two contrastive
// terms, as far as p has them.
func (l Losses) Terms(p Plan) []Term {
	terms := []Term{{"total", l.Total}, {"attraction", l.Att}}
	if p.Sep {
		terms = append(terms, Term{"separation", l.Sep})
	}
	if p.Ent {
		terms = append(terms, Term{"entropy", l.Ent})
	}
	if p.Con {
		terms = append(terms, Term{"contrastive +", l.Pos}, Term{"contrastive -", l.Neg})
	}
	return terms
}
