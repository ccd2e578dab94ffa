"""From a results table to findings: Eq. 1-2 (:mod:`.transfer`), statistics (:mod:`.stats`,
block permutation; :mod:`.correlations`), contamination (:mod:`.contamination`, ``xfer lid``),
similarity (:mod:`.similarity`, ``xfer distance``), byte premiums (:mod:`.premium`,
``xfer premium``), the power law D_T = k·D_F^α (:mod:`.powerlaw`), sensitivity
(:mod:`.sensitivity`), tables (:mod:`.report`), figures (:mod:`.figures`), departures from the
paper (:mod:`.departures`) and the driver (:mod:`.analyse`, ``xfer analyse``; run folders:
:mod:`.runfolder`)."""
