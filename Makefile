# `make demo`: install, generate the toy benchmark, train and test NTRENet on the CPU.
# `make test`: install and run the test suite.
# `make tensorboard`: install the TensorBoard viewer (optional) and serve the runs under LOGDIR.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
TB_STAMP = $(VENV)/.tensorboard
LOGDIR  ?= exp

.PHONY: demo test install clean-demo tensorboard

$(STAMP): requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $(STAMP)

install: $(STAMP)

$(TB_STAMP): requirements-tensorboard.txt $(STAMP)
	$(PY) -m pip install --quiet -r requirements-tensorboard.txt
	touch $(TB_STAMP)

tensorboard: $(TB_STAMP)
	bash scripts/tensorboard.sh $(VENV)/bin/tensorboard $(LOGDIR)

test: $(STAMP)
	$(PY) -m pytest -q tests

demo: $(STAMP)
	bash demo.sh $(PY)

clean-demo:
	rm -rf exp/toy/demo exp/toy/demo_*
