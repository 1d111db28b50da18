"""Figures quoted from the source papers (../shared/papers), for reference rows labelled as quoted.

These are the papers' numbers, not results of this study; the report always shows them beside,
never instead of, what the workflow measured.
"""

HVAE_PAPER = {
    "source": "HVAE paper (Buys), FC hierarchical VAE, 5,000 CelebA images at 32x32, 600 epochs",
    "recon_mse": 0.0726,
    "kl": 0.5056,
    "approx_fid": 170.23,
    "cpu_hours": 2.4,
}

VAE_GAN_STUDY = {
    "source": "VAE/GAN study, CelebA at 64x64, Table 4.1",
    "inception_score": {"VAE": 1.704, "GAN": 2.650, "VAE+GAN": 1.231, "real": 4.239},
    "laplacian_variance": {"VAE": 251.79, "GAN": 2506.18, "VAE+GAN": 1360.62, "real": 1073.71},
}

CONV_VAE_REPORT_CLASSIFIER = {
    "source": "conv-VAE report, chapter 1: CNN on UTKFace 48x48 grayscale, 7:2:1 split, 10 epochs",
    "dataset": "utkface",
    "input": "gray48",  # the setting the anchors hold for
    "gender_accuracy": 0.90,
    "race_accuracy": 0.78,
    "age_mae": 6.03,
    "age_rmse": 8.55,
}

VARIATIONS_REPORT_POSTPROCESS = {
    "source": "variations report, post-processing pipeline on VAE reconstructions at 64x64",
    "mse_before": 0.0360,
    "mse_after": 0.0188,
}
