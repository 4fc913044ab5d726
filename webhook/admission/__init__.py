"""AdmissionReview in, AdmissionReview out: typed reviews, response constructors and the handler.

No HTTP here; the HTTP layer hands bytes to :class:`~webhook.admission.handler.AdmissionHandler`.
"""
