"""The vision-only track (spec §3, the paper's ``cv`` part): face identification on CLEAR
faces, its unlearning methods, identification accuracy and membership-inference attacks.

Its own layers, each importing only from those before it::

    data  ->  model  ->  losses  ->  methods  ->  train  ->  metrics  ->  recipe

``data`` (face sets from a CLEAR source), ``model`` (ResNet + AM-Softmax head), ``losses``
(pure tensor functions), ``methods`` (one dataclass per method, registry ``CV_METHODS``),
``train`` (training and unlearning loops), ``metrics`` (pure numpy functions) and ``recipe``
(``clearbench cv run``). In the project's layering each module sits at the level of its
namesake (``cv.data`` imports only ``clearbench.data``, ``cv.recipe`` is a recipe and may use
``clearbench.recipes.stage`` and ``clearbench.report``).
"""
