"""Image captioners whose internal codes serve as image features (Mopuri et al. 2017).

* ``decoder.py``          the LSTM language model both share (teacher forcing, beam search)
* ``show_and_tell.py``    Show-and-Tell: the 512-d image embedding is the FIC feature
* ``region_captioner.py`` DenseCap-style regions from torchvision's RPN + RoIAlign; BoRD feature
* ``trunk.py``            a trunk cut to stride 16 for the region model
* ``vocab.py``            the caption vocabulary and its special ids
"""
