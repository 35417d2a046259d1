"""How good a restoration is: PSNR, SSIM and LPIPS per image (metrics), the simple restorations
every result is compared with (baselines), and the anytime plots (plots)."""
