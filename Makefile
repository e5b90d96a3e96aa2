# lipkit: the two commands a fresh machine needs are `make reproduce` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= cpu
LIP_ROOT ?=
ONLY ?=
PYTEST_ARGS ?=

.PHONY: venv test test-unit test-notebooks reproduce pretrain search study study-pascal transfer study-readme bench clean

venv: $(STAMP)

# Reinstall only when the dependency description changes.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	touch $(STAMP)

test: test-unit test-notebooks

test-unit: $(STAMP)
	$(PY) -m pytest -q --durations=15 tests $(PYTEST_ARGS)

test-notebooks: $(STAMP)
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/ ; \
	else echo "no notebooks yet"; fi

reproduce: $(STAMP)
	$(PY) -m lipkit reproduce --profile $(PROFILE) $(if $(LIP_ROOT),--data-root $(LIP_ROOT)) $(if $(ONLY),--only $(ONLY))

# The shipped SynthLIP baselines (checkpoints/): both networks side by side, resumable; ~95 min on 2 cores (AMD EPYC).
pretrain: $(STAMP)
	$(PY) -m lipkit pretrain

# The baseline search behind the pretrain recipe (ASPP rates, RQ1's training-set sizes): results/baseline_search/.
search: $(STAMP)
	$(PY) -m lipkit search

# The SSL study (results/ssl_study/): the two bases side by side, then every arm x seed in two shards, one per
# core, resumable. About 6 hours on 2 cores (AMD EPYC); stop and rerun at will, each run continues where it stopped.
study: $(STAMP)
	$(PY) -m lipkit study control --only-base & $(PY) -m lipkit study attention_control --only-base; wait
	$(PY) -m lipkit study --shard 1/2 & $(PY) -m lipkit study --shard 2/2; wait
	$(PY) -m lipkit study --summary
	$(PY) -m lipkit study --readme README.md

# RQ4 across label sets (results/ssl_study_pascal/, checkpoints/synthlip_pascal_deeplabv2/): the same SynthLIP people
# with PASCAL-Person-Part's labels. The base; the pilot (control and paper, seeds 0-1, one core each); the plan, once,
# before the other runs; then the shipped baseline and the remaining runs on two cores; the README. About 2.5 hours
# on 2 cores (AMD EPYC); resumable: a finished run is kept, an interrupted one continues.
study-pascal: $(STAMP)
	$(PY) -m lipkit study --profile synthlip-pascal control --only-base
	$(PY) -m lipkit study --profile synthlip-pascal control paper --seeds 2 --shard 1/2 & \
	  $(PY) -m lipkit study --profile synthlip-pascal control paper --seeds 2 --shard 2/2; wait
	test -f results/ssl_study_pascal/plan.json || $(PY) -m lipkit study --profile synthlip-pascal --plan
	($(PY) -m lipkit pretrain --profile synthlip-pascal --arch deeplabv2 --quiet && \
	  $(PY) -m lipkit study --profile synthlip-pascal --shard 1/2) & $(PY) -m lipkit study --profile synthlip-pascal --shard 2/2; wait
	$(PY) -m lipkit study --profile synthlip-pascal --summary
	$(PY) -m lipkit study --readme README.md

# The CCP transfer experiment (results/ccp_transfer/, checkpoints/ccp_deeplabv2/; needs LIPKIT_CCP): the small copy,
# the zero-shot scores, 3 seeds x 2 arms in two shards (one per core, resumable; ~75 min on 2 cores), then the summary,
# the shipped model and the README's CCP results.
transfer: $(STAMP)
	$(PY) -m lipkit transfer --prepare --quiet
	$(PY) -m lipkit transfer --zero-shot --quiet
	$(PY) -m lipkit transfer --shard 1/2 --quiet & $(PY) -m lipkit transfer --shard 2/2 --quiet; wait
	$(PY) -m lipkit transfer --summary
	$(PY) -m lipkit transfer --ship
	$(PY) -m lipkit transfer --readme README.md

# The README's generated blocks: the study's tables and findings (<!-- study:... -->, from results/ssl_study/) and
# the CCP results (<!-- ccp:results -->, from results/ccp_transfer/ and checkpoints/ccp_deeplabv2/)
study-readme: $(STAMP)
	$(PY) -m lipkit study --readme README.md
	$(PY) -m lipkit transfer --readme README.md

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf runs data/synthlip .pytest_cache

# Every notebook as a student meets it: JupyterLab + Debian's Chromium (apt-get install chromium),
# Run All, then errors, stderr, figures, widgets and their controls; screenshots in runs/browser/.
.PHONY: test-browser
test-browser: $(STAMP)
	LIPKIT_BROWSER_TEST=1 $(PY) -m pytest -q -p no:cacheprovider tests/browser $(PYTEST_ARGS)
