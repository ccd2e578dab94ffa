"""From a results table to findings: Eq. 1-2 (:mod:`.transfer`), statistics (:mod:`.stats`),
contamination (:mod:`.contamination`, ``xfer lid``), similarity (:mod:`.similarity`,
``xfer distance``), tables (:mod:`.report`), figures (:mod:`.figures`) and the driver
(:mod:`.analyse`, ``xfer analyse``)."""
